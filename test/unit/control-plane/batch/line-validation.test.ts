import { describe, expect, it } from 'vitest'
import { BatchValidator } from '../../../../control-plane/batch/line-validation.ts'
import { LineSplitter } from '../../../../control-plane/batch/line-splitter.ts'
import { BATCH_LINE_MAX_BYTES, BATCH_MAX_REPORTED_ERRORS } from '../../../../protocol/index.ts'

const chat = (customId: string, body: Record<string, unknown> = {}, line: Record<string, unknown> = {}) =>
  JSON.stringify({
    custom_id: customId,
    method: 'POST',
    url: '/v1/chat/completions',
    body: { model: 'm', messages: [{ role: 'user', content: 'hi' }], ...body },
    ...line,
  })

function validate(lines: string[], endpoint: '/v1/chat/completions' | '/v1/embeddings' = '/v1/chat/completions') {
  const validator = new BatchValidator({ endpoint, knownModels: ['m', 'other'] })
  const valid = lines.map((text, i) => validator.check(text, i + 1))
  return { validator, valid }
}

describe('batch line validation', () => {
  it('passes good lines with their request as the engine gets it, without llorch priority', () => {
    const { validator, valid } = validate([chat('a', { priority: 'interactive', max_tokens: 3 }), chat('b')])
    expect(validator.failed).toBe(false)
    expect(validator.model).toBe('m')
    expect(valid[0]).toEqual({
      line: 1,
      customId: 'a',
      generation: { endpoint: 'chat', body: { model: 'm', max_tokens: 3, messages: [{ role: 'user', content: 'hi' }] } },
    })
  })

  it('names the line and the field of each bad line', () => {
    const { validator } = validate([
      'not json',
      chat('a'),
      chat('a'),
      chat('c', {}, { method: 'GET' }),
      chat('d', {}, { url: '/v1/completions' }),
      chat('e', { messages: [] }),
      chat('f', { model: 'missing' }),
      chat('g', { model: 'other' }),
      chat('h', { stream: true }),
      JSON.stringify({ method: 'POST' }),
    ])
    expect(validator.errors.map(({ line, code, param }) => ({ line, code, param }))).toEqual([
      { line: 1, code: 'invalid_json_line', param: null },
      { line: 3, code: 'duplicate_custom_id', param: 'custom_id' },
      { line: 4, code: 'invalid_method', param: 'method' },
      { line: 5, code: 'invalid_url', param: 'url' },
      { line: 6, code: 'invalid_request', param: 'body.messages' },
      { line: 7, code: 'model_not_found', param: 'body.model' },
      { line: 8, code: 'mixed_models', param: 'body.model' },
      { line: 9, code: 'invalid_request', param: 'body.stream' },
      { line: 10, code: 'invalid_line', param: 'custom_id' },
    ])
  })

  it('checks an embeddings body as /v1/embeddings takes it', () => {
    const good = JSON.stringify({ custom_id: 'x', method: 'POST', url: '/v1/embeddings', body: { model: 'm', input: 'hello' } })
    const bad = JSON.stringify({ custom_id: 'y', method: 'POST', url: '/v1/embeddings', body: { model: 'm', input: [] } })
    const { validator } = validate([good, bad], '/v1/embeddings')
    expect(validator.errors).toEqual([expect.objectContaining({ line: 2, code: 'invalid_request', param: 'body.input' })])
  })

  it('refuses a line too long for one stored row, and keeps only the first errors of a bad file', () => {
    const { validator } = validate([chat('long', { pad: 'x'.repeat(BATCH_LINE_MAX_BYTES) }), ...Array.from({ length: 150 }, () => '{')])
    expect(validator.errors[0]).toMatchObject({ line: 1, code: 'line_too_long' })
    expect(validator.errors).toHaveLength(BATCH_MAX_REPORTED_ERRORS)
  })

  it('skips blank lines, keeping the file numbering', () => {
    const { validator, valid } = validate(['', chat('a'), '   ', chat('b')])
    expect(validator.lines).toBe(2)
    expect(valid.flatMap((v) => (v ? [v.line] : []))).toEqual([2, 4])
  })
})

describe('line splitter', () => {
  it('splits lines across parts, multi-byte characters included, with or without a last newline', () => {
    const bytes = new TextEncoder().encode('{"a":"é"}\r\n{"b":2}\n{"c":3}')
    const splitter = new LineSplitter()
    const lines = [...splitter.push(bytes.subarray(0, 8)), ...splitter.push(bytes.subarray(8, 15)), ...splitter.push(bytes.subarray(15)), ...splitter.end()]
    expect(lines).toEqual(['{"a":"é"}', '{"b":2}', '{"c":3}'])
  })
})
