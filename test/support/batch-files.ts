/** Batch input files for the tests, and the official client's view of what a batch wrote. */
import type OpenAI from 'openai'
import { toFile } from 'openai'
import { BatchOutputLine } from '../../protocol/index.ts'
import type { OpenAIBatch } from '../../protocol/index.ts'
import { waitFor } from './processes.ts'

/** `count` chat lines for `model`, `custom_id` `req-0` …, each asking for `maxTokens` tokens. */
export function chatLines(model: string, count: number, maxTokens = 2): object[] {
  return Array.from({ length: count }, (_, i) => ({
    custom_id: `req-${i}`,
    method: 'POST',
    url: '/v1/chat/completions',
    body: { model, max_tokens: maxTokens, messages: [{ role: 'user', content: `line ${i}` }] },
  }))
}

export async function uploadLines(client: OpenAI, lines: Array<object | string>): Promise<OpenAI.FileObject> {
  const text = lines.map((line) => (typeof line === 'string' ? line : JSON.stringify(line))).join('\n')
  return client.files.create({ file: await toFile(Buffer.from(text), 'input.jsonl'), purpose: 'batch' })
}

/** Polls the batch until `done` holds, under a ceiling. */
export function waitForBatch(client: OpenAI, id: string, done: (batch: OpenAI.Batch) => boolean, timeoutMs = 30_000): Promise<OpenAI.Batch> {
  return waitFor(
    async () => {
      const batch = await client.batches.retrieve(id)
      return done(batch) ? batch : undefined
    },
    { timeoutMs, intervalMs: 100, message: `batch ${id}` },
  )
}

/** The lines of an output or error file, parsed; none for a file the batch did not write. */
export async function fileLines(client: OpenAI, fileId: string | null | undefined): Promise<BatchOutputLine[]> {
  if (!fileId) return []
  const text = await (await client.files.content(fileId)).text()
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => BatchOutputLine.parse(JSON.parse(line)))
}

/** Past `validating`: its lines are checked, and it runs or has failed. */
export const isValidated = (batch: Pick<OpenAIBatch, 'status'>) => batch.status !== 'validating'

export const isOver = (batch: Pick<OpenAIBatch, 'status'>) => ['completed', 'failed', 'expired', 'cancelled'].includes(batch.status)
