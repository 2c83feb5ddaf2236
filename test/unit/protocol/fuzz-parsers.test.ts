/**
 * Property-based tests, in Node, of the pure parts every request and frame goes through before
 * anything else: the nesting scan (against the depth of the parsed value) and the frame parsers
 * of both sides (never throw; a refusal is itself a valid error frame). FUZZ_SEED replays a run.
 */
import fc from 'fast-check'
import { afterAll, describe, expect, it } from 'vitest'
import { ErrorFrame, MAX_JSON_DEPTH, nestsDeeperThan, parseAgentFrame, parseControlFrame } from '../../../protocol/index.ts'
import { hostilePayloads, longString, toJsonText } from '../../support/json-mutations.ts'
import { logTotal, runProperty, seedFrom } from '../../support/property-run.ts'
import type { PropertyRun } from '../../support/property-run.ts'

const seed = seedFrom(process.env.FUZZ_SEED)
const runs: PropertyRun[] = []

function depthOf(value: unknown): number {
  if (value === null || typeof value !== 'object') return 0
  return 1 + Math.max(0, ...Object.values(value).map(depthOf))
}

const frameLike = fc.oneof(
  hostilePayloads(fc.constant({ type: 'heartbeat', replicas: [], gpus: [], running_tasks: ['t'] }), ['type']),
  hostilePayloads(
    fc.constant({
      type: 'dispatch',
      task_id: 't',
      pool: 'p',
      endpoint: 'chat',
      body: { model: 'p', messages: [{ role: 'user', content: 'Hi' }] },
      deadline_ms: 1,
    }),
    ['type'],
  ),
  // A huge `type` is quoted back in the refusal; many bad items make many issues.
  longString(9_000, 20_000).map((type) => toJsonText({ type })),
  fc.integer({ min: 600, max: 2_000 }).map((n) => toJsonText({ type: 'heartbeat', replicas: [], gpus: [], running_tasks: Array.from({ length: n }, () => 0) })),
)

afterAll(() => logTotal('pure parsers', runs))

describe('parsers under fuzzing', () => {
  it('finds nesting deeper than the limit exactly when the parsed value is that deep', async () => {
    const property = fc.property(fc.jsonValue({ maxDepth: 12 }), fc.integer({ min: 0, max: 12 }), (value, limit) => {
      expect(nestsDeeperThan(JSON.stringify(value), limit)).toBe(depthOf(value) > limit)
    })
    runs.push(await runProperty('nesting scan', property, { numRuns: 1_500, seed }))
    expect(nestsDeeperThan('['.repeat(MAX_JSON_DEPTH + 1), MAX_JSON_DEPTH)).toBe(true)
  })

  it('never throws on a frame, and refuses with an error frame that the other side can parse', async () => {
    const property = fc.property(frameLike, (payload) => {
      for (const result of [parseAgentFrame(payload), parseControlFrame(payload)]) {
        if (!result.ok) expect(ErrorFrame.safeParse(result.error).error).toBeUndefined()
      }
    })
    runs.push(await runProperty('frame parsers', property, { numRuns: 1_000, seed }))
  })
})
