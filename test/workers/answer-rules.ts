import { expect } from 'vitest'
import { NativeErrorBody, OpenAIErrorBody } from '../../protocol/index.ts'

/** What a client learns from an answer, once the rules every answer follows are checked. */
export interface Answer {
  status: number
  /** The error code of a 4xx, null for a success. */
  code: string | null
  /** OpenAI's `param` on `/v1/*`, the field at fault; undefined elsewhere. */
  param: string | null | undefined
  message: string | null
}

/**
 * Checks the rules every answer follows, whatever was sent: never a 5xx (nothing a client sends
 * is the server's fault, and the fuzzed inputs never ask for a pool that could be busy), and a
 * 4xx carries the error shape of its path: OpenAI's on `/v1/*`, the native one elsewhere.
 */
export async function readAnswer(response: Response, path: string): Promise<Answer> {
  const text = response.status === 101 ? '' : await response.text()
  expect(response.status, `${path} answered ${response.status}: ${text.slice(0, 500)}`).toBeLessThan(500)
  if (response.status < 400) return { status: response.status, code: null, param: undefined, message: null }
  const json: unknown = JSON.parse(text)
  if (path.startsWith('/v1/')) {
    const { error } = OpenAIErrorBody.parse(json)
    expect(error.param, 'OpenAI errors always carry param, null when no field is at fault').not.toBeUndefined()
    return { status: response.status, code: error.code, param: error.param, message: error.message }
  }
  const { error } = NativeErrorBody.parse(json)
  return { status: response.status, code: error.code, param: undefined, message: error.message }
}
