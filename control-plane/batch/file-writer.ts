import type { OpenAIFile } from '../../protocol/index.ts'
import type { Bindings } from '../runtime/env.ts'
import type { ObjectResult } from './batch-calls.ts'
import { FILE_PART_BYTES } from './file-store.ts'
import type { NewFile } from './file-store.ts'

/** Bytes in pieces of at most `FILE_PART_BYTES`, gathered so that each call to the file's object carries about that much. */
async function* pieces(chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  let held: Uint8Array[] = []
  let heldBytes = 0
  const flush = () => {
    const piece = new Uint8Array(heldBytes)
    let offset = 0
    for (const chunk of held) {
      piece.set(chunk, offset)
      offset += chunk.byteLength
    }
    held = []
    heldBytes = 0
    return piece
  }
  for await (const chunk of chunks) {
    for (let offset = 0; offset < chunk.byteLength;) {
      const take = Math.min(FILE_PART_BYTES - heldBytes, chunk.byteLength - offset)
      held.push(chunk.subarray(offset, offset + take))
      heldBytes += take
      offset += take
      if (heldBytes === FILE_PART_BYTES) yield flush()
    }
  }
  if (heldBytes > 0) yield flush()
}

/** Writes a file's bytes to its object (`FILES`, named by its id), not yet sealed; a refusal (a limit passed) leaves no file. */
export async function fillFile(env: Bindings, meta: NewFile, chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<ObjectResult<null>> {
  const file = env.FILES.getByName(meta.id)
  await file.begin(meta)
  for await (const piece of pieces(chunks)) {
    const appended = await file.append(piece)
    if (!appended.ok) return appended
  }
  return { ok: true, value: null }
}

/** Writes a whole file and seals it, kept until deleted. */
export async function writeFile(env: Bindings, meta: NewFile, chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<ObjectResult<OpenAIFile>> {
  const filled = await fillFile(env, meta, chunks)
  if (!filled.ok) return filled
  return env.FILES.getByName(meta.id).seal({ expiresAt: null })
}

const encoder = new TextEncoder()

/** JSON lines as the bytes of a `.jsonl` file. */
export function* jsonlBytes(lines: Iterable<string>): Generator<Uint8Array> {
  for (const line of lines) yield encoder.encode(`${line}\n`)
}

/** A file id as OpenAI's look: `file-` and 24 hex digits. */
export const newFileId = () => `file-${crypto.randomUUID().replaceAll('-', '').slice(0, 24)}`
/** A batch id as OpenAI's look: `batch_` and 24 hex digits. */
export const newBatchId = () => `batch_${crypto.randomUUID().replaceAll('-', '').slice(0, 24)}`
