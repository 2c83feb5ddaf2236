import { closeSync, fstatSync, openSync, readSync } from 'node:fs'

/** Every GGUF file starts with these four bytes. */
const GGUF_MAGIC = 'GGUF'
/** magic, version (u32), tensor count (u64), metadata count (u64). */
export const GGUF_HEADER_BYTES = 24
/** Versions llama.cpp has written; 1 is long gone but still reads. */
const GGUF_VERSIONS = new Set([1, 2, 3])
/** Far above any real model, so a count beyond it means the bytes are not a GGUF header. */
const MAX_PLAUSIBLE_TENSORS = 1_000_000
const MAX_PLAUSIBLE_METADATA = 100_000
/** The header, the metadata and one tensor's info take at least this much. */
const MIN_GGUF_BYTES = 64

export interface GgufHeader {
  version: number
  tensors: number
  metadata: number
  size: number
}

/** The header of a GGUF file, or why the bytes are not one (`null` reasons name what was read). */
export function readGgufHeader(file: string): GgufHeader | { problem: string } {
  const fd = openSync(file, 'r')
  try {
    const size = fstatSync(fd).size
    const head = Buffer.alloc(GGUF_HEADER_BYTES)
    const read = readSync(fd, head, 0, head.length, 0)
    if (head.subarray(0, 4).toString('latin1') !== GGUF_MAGIC) return { problem: 'it does not start with "GGUF"' }
    if (read < GGUF_HEADER_BYTES || size < MIN_GGUF_BYTES) return { problem: `it is ${size} bytes, too short for a GGUF model` }
    const version = head.readUInt32LE(4)
    const tensors = Number(head.readBigUInt64LE(8))
    const metadata = Number(head.readBigUInt64LE(16))
    if (!GGUF_VERSIONS.has(version)) return { problem: `its GGUF version is ${version}, expected 1, 2 or 3` }
    if (tensors < 1 || tensors > MAX_PLAUSIBLE_TENSORS) return { problem: `its header claims ${tensors} tensors` }
    if (metadata > MAX_PLAUSIBLE_METADATA) return { problem: `its header claims ${metadata} metadata entries` }
    return { version, tensors, metadata, size }
  } finally {
    closeSync(fd)
  }
}
