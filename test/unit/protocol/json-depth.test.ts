import { describe, expect, it } from 'vitest'
import { MAX_JSON_DEPTH, nestsDeeperThan, parseAgentFrame } from '../../../protocol/index.ts'

const nested = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`

describe('nestsDeeperThan', () => {
  it('counts arrays and objects, and is exact at the limit', () => {
    expect(nestsDeeperThan(nested(3), 3)).toBe(false)
    expect(nestsDeeperThan(nested(4), 3)).toBe(true)
    expect(nestsDeeperThan('{"a":{"b":[1,{"c":2}]}}', 4)).toBe(false)
    expect(nestsDeeperThan('{"a":{"b":[1,{"c":2}]}}', 3)).toBe(true)
  })

  it('ignores brackets inside strings, escaped quotes included', () => {
    expect(nestsDeeperThan(JSON.stringify({ text: '[[[[{{{{' }), 1)).toBe(false)
    expect(nestsDeeperThan(JSON.stringify({ text: 'say "[[[[" \\ [' }), 1)).toBe(false)
  })

  it('finds 5,000 levels in 10 KB without parsing them', () => {
    expect(nestsDeeperThan(`{"x":${nested(5_000)}}`, MAX_JSON_DEPTH)).toBe(true)
  })
})

describe('parseAgentFrame', () => {
  it('refuses a frame nested past the limit with an error frame', () => {
    const result = parseAgentFrame(`{"type":"heartbeat","x":${nested(MAX_JSON_DEPTH + 1)}}`)
    expect(result).toEqual({ ok: false, error: { type: 'error', code: 'invalid_request', message: `frame nests deeper than ${MAX_JSON_DEPTH} levels` } })
  })
})
