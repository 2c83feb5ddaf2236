import type { Context } from 'hono'
import { z } from 'zod'
import type { Generation } from '../task/generation.ts'
import { parseInput } from '../middleware/validate-json.ts'

/** `X-Session-Id`: printable ASCII, as a header value must be, and short enough to remember many. */
export const SessionId = z
  .string()
  .min(1)
  .max(256)
  .regex(/^[\x20-\x7e]+$/, 'expected printable ASCII characters')
/** OpenAI's `user`: a string naming the end user. */
const User = z.string().max(256)
/** A prompt at least this long is placed by its first this many characters, so shared prefixes reuse the engine's cache. */
export const AFFINITY_PREFIX_CHARS = 1_024

/** The start of the prompt: each chat message's role and text in order, or the completion prompt. */
function promptText(generation: Generation): string {
  if (generation.endpoint === 'embeddings') return ''
  if (generation.endpoint === 'completions') {
    const { prompt } = generation.body
    return typeof prompt === 'string' ? prompt : (prompt[0] ?? '')
  }
  let text = ''
  for (const message of generation.body.messages) {
    if (text.length >= AFFINITY_PREFIX_CHARS) break
    text += `${message.role}:${typeof message.content === 'string' ? message.content : JSON.stringify(message.content ?? '')}\n`
  }
  return text
}

async function digest(text: string): Promise<string> {
  const bytes = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)))
  return [...bytes.slice(0, 12)].map((b) => b.toString(16).padStart(2, '0')).join('')
}

/**
 * What places a request next to the ones it shares an engine cache with: the `X-Session-Id`
 * header, else the body's `user`, else the first `AFFINITY_PREFIX_CHARS` of a prompt at least
 * that long; none for a short prompt without a session. Hashed, so the pool remembers no text.
 */
export async function affinityKeyOf(c: Context, generation: Generation): Promise<string | undefined> {
  const header = c.req.header('X-Session-Id')
  if (header !== undefined) return digest(`session:${parseInput(SessionId, header, 'X-Session-Id header')}`)
  const user: unknown = generation.body.user
  if (user !== undefined) return digest(`user:${parseInput(User, user, '`user` field')}`)
  const prompt = promptText(generation)
  return prompt.length >= AFFINITY_PREFIX_CHARS ? digest(`prefix:${prompt.slice(0, AFFINITY_PREFIX_CHARS)}`) : undefined
}
