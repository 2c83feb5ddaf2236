/**
 * `npm run bench:batch`: the Batch API on the fleet's idle slots, measured against the local
 * stack with a fake engine. (1) Throughput: the same chat requests sent by a client with as many
 * connections as the pool has slots, then as the lines of one batch; lines/s of each and the
 * ratio (the issue asks ≥ 0.9). (2) Interactive TTFT: one interactive client alone, then the same
 * client while a batch runs (from its first finished line to past the client's last request),
 * with the default `batch_slot_share` and with one that keeps a slot free; TTFT p50 of each, the
 * ratio to alone (the issue asks ≤ 1.1), and the lines preempted meanwhile (engine requests aborted).
 *
 *   npm run bench:batch -- 1000     # lines (and client requests); 300 when left out
 */
import OpenAI, { toFile } from 'openai'
import { z } from 'zod'
import { startBenchStack } from './bench-stack.ts'
import type { BenchStack } from './bench-stack.ts'
import { runLoad } from './load-runner.ts'
import { Reaper } from './reaper.ts'
import { percentile } from './stream-stats.ts'
import type { BenchPool } from './scenarios.ts'
import type { StreamSample } from './stream-request.ts'

const say = (line: string) => process.stderr.write(`bench:batch: ${line}\n`)

const DEFAULT_LINES = 300
const POOL: BenchPool = { id: 'bench-batch', tokensPerSecond: 200, slots: 4 }
/** Tokens of each batch line and client request: a twentieth of a second at the pool's pace. */
const TOKENS = 10
/** Lines of the batch an interactive run goes beside: more than run while it lasts. */
const BESIDE_LINES = 2_000
/** Interactive requests in each TTFT run, one at a time. */
const INTERACTIVE_REQUESTS = 100
const POLL_MS = 50
/** The share of the last run, which leaves one of the 4 slots to interactive requests. */
const KEPT_SHARE = 0.75

const ttftP50 = (samples: StreamSample[]) =>
  percentile(
    samples.flatMap((s) => (s.ttftMs === null ? [] : [s.ttftMs])),
    50,
  )
const errorsOf = (samples: StreamSample[]) => samples.filter((s) => s.error !== null).length

function chatLines(count: number): string {
  return Array.from({ length: count }, (_, i) =>
    JSON.stringify({
      custom_id: `line-${i}`,
      method: 'POST',
      url: '/v1/chat/completions',
      body: { model: POOL.id, max_tokens: TOKENS, messages: [{ role: 'user', content: `line ${i}` }] },
    }),
  ).join('\n')
}

interface BatchRun {
  id: string
  /** When the batch was created, by `performance.now()`. */
  startedAt: number
}

/** Uploads and creates a batch of `lines`. */
async function startBatch(client: OpenAI, lines: number): Promise<BatchRun> {
  const file = await client.files.create({ file: await toFile(Buffer.from(chatLines(lines)), 'bench.jsonl'), purpose: 'batch' })
  const startedAt = performance.now()
  const created = await client.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' })
  return { id: created.id, startedAt }
}

/** Polls the batch until `done` holds. */
async function batchWhen(client: OpenAI, id: string, done: (batch: OpenAI.Batch) => boolean): Promise<OpenAI.Batch> {
  for (;;) {
    const batch = await client.batches.retrieve(id)
    if (done(batch)) return batch
    await new Promise((resolve) => setTimeout(resolve, POLL_MS))
  }
}

const isOver = (batch: OpenAI.Batch) => ['completed', 'failed', 'expired', 'cancelled'].includes(batch.status)
/** Past validation, with lines finishing: every slot it may take is taken. */
const isRunning = (batch: OpenAI.Batch) => isOver(batch) || (batch.request_counts?.completed ?? 0) > 0

/** Runs a batch of `lines` to its end: its wall time from creation, and its line counts. */
async function runBatch(client: OpenAI, lines: number): Promise<{ wallMs: number; completed: number; failed: number }> {
  const run = await startBatch(client, lines)
  const batch = await batchWhen(client, run.id, isOver)
  return { wallMs: performance.now() - run.startedAt, completed: batch.request_counts?.completed ?? 0, failed: batch.request_counts?.failed ?? 0 }
}

const EngineStats = z.object({ aborted: z.number() })
const abortedRequests = async (engineUrl: string) => EngineStats.parse(await (await fetch(`${engineUrl}/fake/stats`)).json()).aborted

/**
 * The interactive client's run while a batch runs: started once the batch's lines run, checked to
 * have ended before the batch did, which is then cancelled. Also the lines preempted meanwhile.
 */
async function besideBatch(client: OpenAI, interactive: () => Promise<StreamSample[]>, engineUrl: string) {
  const run = await startBatch(client, BESIDE_LINES)
  await batchWhen(client, run.id, isRunning)
  const abortedBefore = await abortedRequests(engineUrl)
  const samples = await interactive()
  const preempted = (await abortedRequests(engineUrl)) - abortedBefore
  const cancelled = await client.batches.cancel(run.id)
  if (cancelled.status !== 'cancelled') throw new Error(`the batch was ${cancelled.status} before the interactive run ended: raise BESIDE_LINES`)
  return { samples, preempted }
}

async function main(lines: number, reaper: Reaper): Promise<void> {
  const stack: BenchStack = await startBenchStack({ pools: [POOL], reaper, say })
  try {
    const target = { path: 'relay' as const, url: `${stack.apiUrl}/chat/completions`, model: POOL.id, headers: { Authorization: `Bearer ${stack.apiKey}` } }
    const client = new OpenAI({ apiKey: stack.apiKey, baseURL: stack.apiUrl, maxRetries: 0 })
    say('warming up')
    await runLoad({ target, requests: 2 * POOL.slots, concurrency: POOL.slots, tokens: TOKENS })

    say(`client: ${lines} requests, ${POOL.slots} connections`)
    const direct = await runLoad({ target, requests: lines, concurrency: POOL.slots, tokens: TOKENS })
    say(`batch: ${lines} lines`)
    const batch = await runBatch(client, lines)

    const interactive = async () => (await runLoad({ target, requests: INTERACTIVE_REQUESTS, concurrency: 1, tokens: TOKENS })).samples
    const engineUrl = stack.engineUrls.get(POOL.id) ?? ''
    say(`interactive alone: ${INTERACTIVE_REQUESTS} requests, one at a time`)
    const alone = { samples: await interactive() }
    say('interactive while a batch runs')
    const beside = await besideBatch(client, interactive, engineUrl)
    say(`interactive while a batch runs on a batch_slot_share of ${KEPT_SHARE}`)
    await stack.admin('PATCH', `/v2/pools/${POOL.id}`, { batch_slot_share: KEPT_SHARE })
    const besideShared = await besideBatch(client, interactive, engineUrl)

    const clientRate = (lines * 1000) / direct.wallMs
    const batchRate = (batch.completed * 1000) / batch.wallMs
    const report = {
      pool: POOL,
      tokens: TOKENS,
      lines,
      client: { lines_per_s: clientRate, errors: errorsOf(direct.samples) },
      batch: { lines_per_s: batchRate, completed: batch.completed, failed: batch.failed },
      throughput_ratio: batchRate / clientRate,
      interactive_requests: INTERACTIVE_REQUESTS,
      interactive_ttft_p50_ms: { alone: ttftP50(alone.samples), beside_batch: ttftP50(beside.samples) },
      ttft_ratio: ttftP50(beside.samples) / ttftP50(alone.samples),
      lines_preempted: beside.preempted,
      interactive_errors: errorsOf([...alone.samples, ...beside.samples, ...besideShared.samples]),
      kept_share: {
        batch_slot_share: KEPT_SHARE,
        ttft_p50_ms: ttftP50(besideShared.samples),
        ttft_ratio: ttftP50(besideShared.samples) / ttftP50(alone.samples),
        lines_preempted: besideShared.preempted,
      },
    }
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`)
  } finally {
    await stack.stop()
  }
}

const reaper = new Reaper()
process.once('exit', () => reaper.reapNow())
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    reaper.reapNow()
    process.exit(signal === 'SIGINT' ? 130 : 143)
  })
}

const lines = Number(process.argv[2] ?? DEFAULT_LINES)
try {
  await main(Number.isInteger(lines) && lines > 0 ? lines : DEFAULT_LINES, reaper)
} catch (error) {
  say(`failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`)
  process.exitCode = 1
}
