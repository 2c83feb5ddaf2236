import { effectiveLimits, limitsAny } from '../../protocol/index.ts'
import type { KeyLimitCode, KeyLimits, Refusal, Usage } from '../../protocol/index.ts'
import type { Bindings } from '../runtime/env.ts'
import { logError } from '../runtime/log.ts'
import type { AdmissionRequest } from '../pool/grant.ts'

/** A task counted against its key's limits, or not counted because none applies. */
export type KeyLease = { ok: true; counted: boolean; headers: Record<string, string> | undefined } | { ok: false; refusal: Refusal<KeyLimitCode> }

const NOT_COUNTED: KeyLease = { ok: true, counted: false, headers: undefined }

/**
 * Counts a new task against its key's limits (its own, else the pool's defaults) at the key's
 * ApiKeyObject, the one place every isolate's requests of that key meet, for at most `holdMs`
 * (its wait and run deadlines). A task without a key, or whose key has no limit here, costs no call.
 */
export async function takeKeyLease(
  env: Bindings,
  request: AdmissionRequest,
  { poolDefaults, holdMs }: { poolDefaults: KeyLimits | undefined; holdMs: number },
): Promise<KeyLease> {
  if (request.apiKeyId === null) return NOT_COUNTED
  const limits = effectiveLimits(request.keyLimits ?? {}, poolDefaults)
  if (!limitsAny(limits)) return NOT_COUNTED
  const decision = await env.API_KEYS.getByName(request.apiKeyId).acquire({ taskId: request.taskId, limits, holdMs })
  if (decision.ok) return { ok: true, counted: true, headers: decision.headers }
  return { ok: false, refusal: decision }
}

/** The task ended or never ran: its key's concurrent place is free and its tokens are spent. Never throws. */
export function settleKeyLease(env: Bindings, { apiKeyId, taskId, usage }: { apiKeyId: string; taskId: string; usage: Usage | null }): Promise<void> {
  const tokens = usage ? usage.prompt_tokens + usage.completion_tokens : 0
  return env.API_KEYS.getByName(apiKeyId)
    .settle({ taskId, tokens })
    .catch((error: unknown) => logError('api_key.settle_failed', { key: apiKeyId, task: taskId, error: String(error) }))
}

/**
 * The Worker's side of one task's lease: settled once however the task ends, and not at all
 * where admission said no limit counted it. Before admission answered, a failure settles anyway
 * (a task that waited out its deadline was counted).
 */
export function taskLease(
  env: Bindings,
  { apiKeyId, taskId, waitUntil }: { apiKeyId: string | null; taskId: string; waitUntil(promise: Promise<unknown>): void },
) {
  let counted: boolean | undefined
  let settled = false
  let headers: Record<string, string> = {}
  return {
    /** Admission granted the task, with the key's `x-ratelimit-*` state when a limit counted it. */
    admitted(rateLimitHeaders: Record<string, string> | undefined): void {
      counted ??= rateLimitHeaders !== undefined
      headers = rateLimitHeaders ?? headers
    },
    /** Admission was asked again after a restart of the pool: the first call may have counted the task, so it is settled. */
    rejoined(): void {
      counted = true
    },
    get headers(): Record<string, string> {
      return headers
    },
    settle(usage: Usage | null): void {
      if (apiKeyId === null || settled || counted === false) return
      settled = true
      waitUntil(settleKeyLease(env, { apiKeyId, taskId, usage }))
    },
  }
}
