import { describe, expect, it } from 'vitest'
import { MultipartReader, boundaryOf } from '../../../../control-plane/batch/multipart-reader.ts'
import type { FormPart } from '../../../../control-plane/batch/multipart-reader.ts'
import { LlorchError } from '../../../../protocol/index.ts'

/** A form encoded as fetch encodes it, delivered in pieces of `pieceBytes`. */
async function encoded(form: FormData, pieceBytes: number): Promise<{ body: ReadableStream<Uint8Array>; contentType: string }> {
  const request = new Request('http://form.test', { method: 'POST', body: form })
  const bytes = new Uint8Array(await request.arrayBuffer())
  let at = 0
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (at >= bytes.length) return controller.close()
      controller.enqueue(bytes.slice(at, at + pieceBytes))
      at += pieceBytes
    },
  })
  return { body, contentType: request.headers.get('content-type') ?? '' }
}

async function readAll(reader: MultipartReader): Promise<Array<FormPart & { text: string }>> {
  const parts: Array<FormPart & { text: string }> = []
  for (let part = await reader.next(); part; part = await reader.next()) parts.push({ ...part, text: await reader.text(1_000_000) })
  return parts
}

describe('multipart reader', () => {
  it('reads fields and a file as they arrive, however the body is cut', async () => {
    const content = '{"a":1}\r\n--not-the-boundary\r\n{"b":"é"}\n'
    for (const pieceBytes of [1, 7, 64, 100_000]) {
      const form = new FormData()
      form.append('purpose', 'batch')
      form.append('file', new Blob([content]), 'in.jsonl')
      form.append('expires_after[seconds]', '3600')
      const { body, contentType } = await encoded(form, pieceBytes)
      expect(await readAll(new MultipartReader(body, boundaryOf(contentType)))).toEqual([
        { name: 'purpose', filename: null, text: 'batch' },
        { name: 'file', filename: 'in.jsonl', text: content },
        { name: 'expires_after[seconds]', filename: null, text: '3600' },
      ])
    }
  })

  it('refuses a body that is not a form, or ends early, as a 400', async () => {
    expect(() => boundaryOf('application/json')).toThrow(LlorchError)
    const stream = (text: string) => new Response(text).body ?? new ReadableStream()
    const truncated = new MultipartReader(stream('--b\r\nContent-Disposition: form-data; name="file"; filename="x"\r\n\r\nabc'), 'b')
    expect(await truncated.next()).toEqual({ name: 'file', filename: 'x' })
    await expect(truncated.text(100)).rejects.toMatchObject({ code: 'invalid_request', status: 400 })
    await expect(new MultipartReader(stream('no boundary here'), 'b').next()).rejects.toMatchObject({ code: 'invalid_request' })
  })
})
