import type { z } from 'zod'
import { AgentFrame, ControlFrame, MAX_ERROR_MESSAGE_CHARS, MAX_FRAME_BYTES } from './agent-frames.ts'
import type { ErrorFrame } from './agent-frames.ts'
import { describeIssues } from './describe-issues.ts'
import { MAX_JSON_DEPTH, nestsDeeperThan } from './json-depth.ts'

export type ParsedFrame<T> = { ok: true; frame: T } | { ok: false; error: ErrorFrame }

function invalid(message: string): { ok: false; error: ErrorFrame } {
  // The message quotes what was sent (a type, every issue), so it is clipped to what an error frame may carry.
  return { ok: false, error: { type: 'error', code: 'invalid_request', message: message.slice(0, MAX_ERROR_MESSAGE_CHARS) } }
}

function parseWith<T>(schema: z.ZodType<T>, raw: string | ArrayBuffer | Uint8Array): ParsedFrame<T> {
  if (typeof raw !== 'string') return invalid('binary frames are not part of the protocol; send JSON text frames')
  if (raw.length > MAX_FRAME_BYTES) return invalid(`frame of ${raw.length} characters exceeds ${MAX_FRAME_BYTES}`)
  if (nestsDeeperThan(raw, MAX_JSON_DEPTH)) return invalid(`frame nests deeper than ${MAX_JSON_DEPTH} levels`)
  let json: unknown
  try {
    json = JSON.parse(raw)
  } catch {
    return invalid('frame is not valid JSON')
  }
  const result = schema.safeParse(json)
  if (result.success) return { ok: true, frame: result.data }
  const type = typeof json === 'object' && json !== null && 'type' in json ? String(json.type) : '(none)'
  return invalid(`invalid "${type}" frame: ${describeIssues(result.error.issues)}`)
}

/** Parses a frame an agent sent. Never throws. */
export function parseAgentFrame(raw: string | ArrayBuffer | Uint8Array): ParsedFrame<AgentFrame> {
  return parseWith(AgentFrame, raw)
}

/** Parses a frame the control plane sent. Never throws. */
export function parseControlFrame(raw: string | ArrayBuffer | Uint8Array): ParsedFrame<ControlFrame> {
  return parseWith(ControlFrame, raw)
}
