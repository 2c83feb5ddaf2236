/**
 * Property-based fuzzing of the agent wire protocol: batches of generated frames over a real
 * agent WebSocket into the NodeObject (valid frames of every type, the same with wrong, missing
 * and unknown fields, swapped types, long arrays, deep nesting, arbitrary JSON, non-JSON text,
 * binary frames, frames past the size limit). Proves: every frame the protocol refuses is
 * answered with exactly the `invalid_request` error frame `parseAgentFrame` predicts, in order;
 * nothing makes the object fail (no `internal_error` frame, no close but the one a foreign
 * protocol version asks for); every frame the control plane sends back parses as a control
 * frame; and after each batch a valid `hello` still gets `welcome` and the node still answers 200.
 */
import { exports } from 'cloudflare:workers'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { CLOSE_CODES, MAX_FRAME_BYTES, PROTOCOL_VERSION, parseAgentFrame, parseControlFrame } from '../../protocol/index.ts'
import type { ControlFrame, GpuInfo, ReplicaReport } from '../../protocol/index.ts'
import type { Payload } from '../support/json-mutations.ts'
import { hostilePayloads, longString, toJsonText } from '../support/json-mutations.ts'
import { logTotal, runProperty, seedFrom } from '../support/property-run.ts'
import type { PropertyRun } from '../support/property-run.ts'
import { EVENT_CEILING_MS, createNode, hello } from './agent-socket.ts'
import { call, uniqueName } from './support.ts'

const seed = seedFrom(inject('fuzzSeed'))
const runs: PropertyRun[] = []
const pool = uniqueName('fuzz-frames')

const replica: ReplicaReport = { pool, engine: 'openai', state: 'ready', slots: 2, slots_busy: 0, engine_version: 'v1', reason: null, breaker_open: false }
const gpu: GpuInfo = { index: 0, name: 'NVIDIA H100', memory_total_mib: 81559, memory_used_mib: 1024 }

/** One valid frame of every type and task event kind the agent sends: the seeds the mutations break. */
const VALID_FRAMES: readonly object[] = [
  hello({ replicas: [replica], running_tasks: ['task-1'] }),
  { type: 'heartbeat', replicas: [replica], gpus: [gpu], running_tasks: ['task-1'] },
  { type: 'replica_state', replica: { ...replica, state: 'starting' }, previous: 'stopped' },
  { type: 'task_event', task_id: 'task-1', event: { kind: 'started' } },
  {
    type: 'task_event',
    task_id: 'task-1',
    event: { kind: 'deltas', seq: 0, chunks: [{ choices: [{ index: 0, delta: { content: 'Hi' }, finish_reason: null }] }] },
  },
  { type: 'task_event', task_id: 'task-1', event: { kind: 'end', finish_reason: 'stop', usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } } },
  { type: 'task_event', task_id: 'task-1', event: { kind: 'error', code: 'engine_error', message: 'engine exited', retriable: true } },
  { type: 'ack', command_id: 'command-1', ok: false, error: { code: 'engine_error', message: 'no such pool' } },
  { type: 'error', code: 'invalid_request', message: 'the agent could not use a frame' },
]
const FRAME_TYPES = [...new Set(VALID_FRAMES.map((frame) => ('type' in frame ? String(frame.type) : '')))]
const FRAME_KEYS = [...new Set(VALID_FRAMES.flatMap((frame) => Object.keys(frame))), 'event', 'kind', 'seq']

const frame: fc.Arbitrary<Payload> = fc.oneof(
  ...VALID_FRAMES.map((valid) => ({ weight: 4, arbitrary: hostilePayloads(fc.constant(valid), FRAME_KEYS) })),
  { weight: 2, arbitrary: fc.tuple(fc.constantFrom(...VALID_FRAMES), fc.constantFrom(...FRAME_TYPES)).map(([valid, type]) => toJsonText({ ...valid, type })) },
  // A hello of another protocol version is refused and the socket closed; the fuzzer opens another.
  { weight: 1, arbitrary: fc.nat({ max: PROTOCOL_VERSION + 2 }).map((protocol) => toJsonText(hello({ protocol, replicas: [replica] }))) },
)

/** The agent's end of a socket, keeping every frame the control plane sent, raw. */
class AgentEnd {
  readonly ws: WebSocket
  readonly received: string[] = []
  closed: { code: number; reason: string } | null = null
  readonly #waiting = new Set<() => void>()

  constructor(ws: WebSocket) {
    this.ws = ws
    ws.addEventListener('message', (event) => {
      this.received.push(typeof event.data === 'string' ? event.data : '(binary)')
      this.#wake()
    })
    ws.addEventListener('close', (event) => {
      this.closed = { code: event.code, reason: event.reason }
      this.#wake()
    })
  }

  static async open(token: string): Promise<AgentEnd> {
    const response = await exports.default.fetch('https://llorch.test/v2/agent/connect', {
      headers: { Upgrade: 'websocket', Authorization: `Bearer ${token}` },
    })
    if (!response.webSocket) throw new Error(`expected an upgrade, got ${response.status}`)
    response.webSocket.accept()
    return new AgentEnd(response.webSocket)
  }

  send(payload: Payload): void {
    this.ws.send(payload)
  }

  /** Resolves once `done()` holds after some frame or the close; fails past the ceiling. */
  until(done: () => boolean, what: string): Promise<void> {
    if (done()) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(check)
        reject(new Error(`${what} did not happen within ${EVENT_CEILING_MS} ms; received ${JSON.stringify(this.received.slice(-5))}`))
      }, EVENT_CEILING_MS)
      const check = () => {
        if (!done()) return
        clearTimeout(timer)
        this.#waiting.delete(check)
        resolve()
      }
      this.#waiting.add(check)
    })
  }

  #wake(): void {
    for (const check of [...this.#waiting]) check()
  }
}

/** What the control plane must answer to a batch, from `parseAgentFrame` alone. */
interface Expected {
  /** The frames sent: a hello of another protocol version ends the batch, as it ends the socket. */
  sent: Payload[]
  refusals: string[]
  welcomes: number
  closes: boolean
}

/** A text frame arrives as the receiver decodes it: lone surrogates become U+FFFD. */
function arrived(payload: Payload): string | Uint8Array {
  return typeof payload === 'string' ? payload.toWellFormed() : payload
}

function expectedFor(batch: readonly Payload[]): Expected {
  const expected: Expected = { sent: [], refusals: [], welcomes: 0, closes: false }
  for (const payload of batch) {
    expected.sent.push(payload)
    const parsed = parseAgentFrame(arrived(payload))
    if (!parsed.ok) expected.refusals.push(parsed.error.message)
    else if (parsed.frame.type === 'hello' && parsed.frame.protocol !== PROTOCOL_VERSION) {
      expected.closes = true
      return expected
    } else if (parsed.frame.type === 'hello') expected.welcomes += 1
  }
  return expected
}

/** Counted on the raw text: the frames are parsed (and any unparsable one reported) once all have come. */
function isWelcome(raw: string): boolean {
  return raw.startsWith('{"type":"welcome"')
}

let nodeId = ''
let framesSent = 0
/** Refusals, welcomes and foreign-version closes must all occur, or the property proved little. */
const seen = { refusals: 0, welcomes: 0, closes: 0 }
let nodeToken = ''
let agent: AgentEnd

async function helloed(): Promise<AgentEnd> {
  const end = await AgentEnd.open(nodeToken)
  const from = end.received.length
  end.send(JSON.stringify(hello({ replicas: [replica] })))
  await end.until(() => end.received.slice(from).some(isWelcome), 'a welcome for the hello')
  return end
}

function controlFrames(raws: readonly string[]): ControlFrame[] {
  return raws.map((raw) => {
    const parsed = parseControlFrame(raw)
    if (!parsed.ok) throw new Error(`the control plane sent a frame the agent cannot parse (${parsed.error.message}): ${raw.slice(0, 300)}`)
    return parsed.frame
  })
}

/** Sends a batch and a valid hello after it; checks the answers, the object and the node. */
async function checkBatch(batch: readonly Payload[]): Promise<void> {
  const expected = expectedFor(batch)
  seen.refusals += expected.refusals.length
  seen.welcomes += expected.welcomes
  seen.closes += expected.closes ? 1 : 0
  const from = agent.received.length
  framesSent += expected.sent.length
  for (const payload of expected.sent) agent.send(payload)
  if (!expected.closes) agent.send(JSON.stringify(hello({ replicas: [replica] })))
  const welcomes = () => agent.received.slice(from).filter(isWelcome).length
  await agent.until(() => agent.closed !== null || welcomes() >= expected.welcomes + (expected.closes ? 0 : 1), 'the welcome for the batch')
  if (expected.closes) await agent.until(() => agent.closed !== null, 'the close for a foreign protocol version')

  const answers = controlFrames(agent.received.slice(from))
  const errors = answers.flatMap((f) => (f.type === 'error' ? [f] : []))
  expect(
    errors.filter((e) => e.code === 'internal_error'),
    'frames the object failed on',
  ).toEqual([])
  expect(errors.filter((e) => e.code === 'invalid_request').map((e) => e.message)).toEqual(expected.refusals)
  if (expected.closes) {
    expect(agent.closed?.code).toBe(CLOSE_CODES.protocolMismatch)
    agent = await helloed()
  } else {
    expect(agent.closed, 'the socket stays open').toBeNull()
  }
  expect((await call('GET', `/v2/nodes/${nodeId}`)).status).toBe(200)
}

beforeAll(async () => {
  const node = await createNode()
  nodeId = node.id
  nodeToken = node.token
  agent = await helloed()
})

afterAll(() => {
  agent.ws.close(1000, 'done')
  logTotal('agent frames', runs)
})

describe('agent frames under fuzzing', () => {
  it('answers every batch of frames as parseAgentFrame predicts and keeps serving the agent', async () => {
    const batches = fc.array(frame, { minLength: 1, maxLength: 30, size: 'max' })
    const before = framesSent
    const run = await runProperty('agent frame batches', fc.asyncProperty(batches, checkBatch), { numRuns: 200, seed })
    // Each run is a batch; the inputs are its frames.
    runs.push({ ...run, runs: framesSent - before })
    expect(
      Object.values(seen).every((count) => count > 0),
      JSON.stringify(seen),
    ).toBe(true)
  })

  it('refuses frames past the size limit and keeps the socket', async () => {
    const oversized = longString(MAX_FRAME_BYTES + 1, MAX_FRAME_BYTES + 4096).map((pad) => toJsonText({ ...VALID_FRAMES[1], pad }))
    runs.push(
      await runProperty(
        'oversized agent frames',
        fc.asyncProperty(oversized, (payload) => checkBatch([payload])),
        { numRuns: 3, seed },
      ),
    )
  })
})
