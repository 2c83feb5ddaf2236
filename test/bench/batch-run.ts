/**
 * `npm run bench:batch`: the Batch API on the fleet's idle slots, measured against the local
 * stack with a fake engine. (1) Throughput: the same chat requests sent by a client with as many
 * connections as the pool has slots, then as the lines of one batch; lines/s of each and the
 * ratio (the issue asks ≥ 0.9). (2) Interactive TTFT: one interactive client alone, then the same
 * client while a batch runs, with the default `batch_slot_share` and with one that keeps a slot
 * free; TTFT p50 of each and the ratio to alone (the issue asks ≤ 1.1).
 *
 *   npm run bench:batch -- 1000     # lines (and client requests); 300 when left out
 */
import OpenAI, { toFile } from 'openai'
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
/** Interactive requests in each TTFT run, one at a time. */
const INTERACTIVE_REQUESTS = 40
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

/** Uploads and creates a batch of `lines`; answers when it is over, with its wall time. */
async function runBatch(client: OpenAI, lines: number): Promise<{ wallMs: number; completed: number; failed: number }> {
  const file = await client.files.create({ file: await toFile(Buffer.from(chatLines(lines)), 'bench.jsonl'), purpose: 'batch' })
  const started = performance.now()
  const created = await client.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' })
  for (;;) {
    const batch = await client.batches.retrieve(created.id)
    if (['completed', 'failed', 'expired', 'cancelled'].includes(batch.status)) {
      return { wallMs: performance.now() - started, completed: batch.request_counts?.completed ?? 0, failed: batch.request_counts?.failed ?? 0 }
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS))
  }
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

    say(`interactive alone: ${INTERACTIVE_REQUESTS} requests, one at a time`)
    const alone = await runLoad({ target, requests: INTERACTIVE_REQUESTS, concurrency: 1, tokens: TOKENS })
    say('interactive while a batch runs')
    const running = runBatch(client, lines)
    const beside = await runLoad({ target, requests: INTERACTIVE_REQUESTS, concurrency: 1, tokens: TOKENS })
    await running
    say(`interactive while a batch runs on a batch_slot_share of ${KEPT_SHARE}`)
    await stack.admin('PATCH', `/v2/pools/${POOL.id}`, { batch_slot_share: KEPT_SHARE })
    // A new batch reads the share from the registry when it starts.
    const sharing = runBatch(client, lines)
    const besideShared = await runLoad({ target, requests: INTERACTIVE_REQUESTS, concurrency: 1, tokens: TOKENS })
    await sharing

    const clientRate = (lines * 1000) / direct.wallMs
    const batchRate = (batch.completed * 1000) / batch.wallMs
    const report = {
      pool: POOL,
      tokens: TOKENS,
      lines,
      client: { lines_per_s: clientRate, errors: errorsOf(direct.samples) },
      batch: { lines_per_s: batchRate, completed: batch.completed, failed: batch.failed },
      throughput_ratio: batchRate / clientRate,
      interactive_ttft_p50_ms: { alone: ttftP50(alone.samples), beside_batch: ttftP50(beside.samples) },
      ttft_ratio: ttftP50(beside.samples) / ttftP50(alone.samples),
      kept_share: {
        batch_slot_share: KEPT_SHARE,
        ttft_p50_ms: ttftP50(besideShared.samples),
        ttft_ratio: ttftP50(besideShared.samples) / ttftP50(alone.samples),
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
