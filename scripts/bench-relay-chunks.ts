/**
 * Micro-benchmark of the agent's work per engine chunk: reading the data line, merging it into
 * the pending batch and checking each batch against the protocol once, next to a full zod parse
 * of every chunk (what the relay avoids). Prints CPU µs per chunk (this process's user and system
 * time, the best of five rounds, so that other load on the machine counts little); no network,
 * no engine.
 *
 *   npx node scripts/bench-relay-chunks.ts [--chunks 200000]
 */
import { parseArgs } from 'node:util'
import { ChunkBatcher } from '../node-agent/relay/chunk-batcher.ts'
import { deltasEvent, readChunk } from '../node-agent/relay/engine-chunk-reader.ts'
import { EngineChunk } from '../protocol/index.ts'

const { values } = parseArgs({ options: { chunks: { type: 'string', default: '200000' } } })
const total = Number(values.chunks)

const head = {
  id: 'chatcmpl-0123456789',
  object: 'chat.completion.chunk',
  created: 1765000000,
  model: 'qwen2.5-7b-instruct',
  system_fingerprint: 'b6123-abcdef',
}
const entry = (token: string) => ({
  token,
  logprob: -0.25,
  bytes: [...Buffer.from(token)],
  top_logprobs: [{ token, logprob: -0.25, bytes: [...Buffer.from(token)] }],
})
const corpora: Record<string, string[]> = {
  text: Array.from({ length: 1000 }, (_, i) =>
    JSON.stringify({ ...head, choices: [{ index: 0, delta: { content: ` tok${i}` }, logprobs: null, finish_reason: null }] }),
  ),
  'tool-call fragments': Array.from({ length: 1000 }, (_, i) =>
    JSON.stringify({ ...head, choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: `"k${i}":` } }] }, finish_reason: null }] }),
  ),
  'text + logprobs': Array.from({ length: 1000 }, (_, i) =>
    JSON.stringify({ ...head, choices: [{ index: 0, delta: { content: ` tok${i}` }, logprobs: { content: [entry(` tok${i}`)] }, finish_reason: null }] }),
  ),
}

const ROUNDS = 5

/** CPU microseconds per chunk, the best of `ROUNDS` runs of `work`. */
async function cpuPerChunk(work: () => unknown): Promise<number> {
  let best = Infinity
  for (let round = 0; round < ROUNDS; round++) {
    const before = process.cpuUsage()
    await work()
    const used = process.cpuUsage(before)
    best = Math.min(best, (used.user + used.system) / total)
  }
  return best
}

function zodPerChunk(lines: string[]): void {
  for (let i = 0; i < total; i++) {
    if (!EngineChunk.safeParse(JSON.parse(lines[i % lines.length] ?? '{}')).success) throw new Error('corpus chunk refused')
  }
}

/** The relay's path: `batch` chunks arrive while the link is busy, are taken as one batch and checked once. */
async function relayPath(lines: string[], batch: number): Promise<void> {
  const lineBytes = lines[0]?.length ?? 1
  const batcher = new ChunkBatcher({ highWaterBytes: Infinity })
  const items = batcher.items()
  // The first pull meets an idle link and takes one chunk; start measuring after it.
  batcher.push(readChunkOrThrow(lines[0] ?? ''), lineBytes)
  await items.next()
  let seq = 1
  for (let i = 0; i < total;) {
    for (let n = 0; n < batch && i < total; n++, i++) batcher.push(readChunkOrThrow(lines[i % lines.length] ?? ''), lineBytes)
    const next = await items.next()
    if (next.done || next.value.kind !== 'chunks') throw new Error('expected a batch')
    if (deltasEvent(next.value.chunks, seq++, 'bench') instanceof Error) throw new Error('batch refused')
  }
}

function readChunkOrThrow(line: string) {
  const chunk = readChunk(line, 'bench')
  if (chunk instanceof Error) throw chunk
  return chunk
}

const rows: string[][] = [['corpus', 'zod per chunk', 'relay, 1 per batch', 'relay, 20 per batch', 'relay, 200 per batch']]
for (const [name, lines] of Object.entries(corpora)) {
  const cells = [await cpuPerChunk(() => zodPerChunk(lines))]
  for (const batch of [1, 20, 200]) cells.push(await cpuPerChunk(() => relayPath(lines, batch)))
  rows.push([name, ...cells.map((us) => `${us.toFixed(2)} µs`)])
}
const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => row[column]?.length ?? 0))) ?? []
for (const row of rows) console.log(row.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join('  '))
