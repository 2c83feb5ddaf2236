import { describe, expect, it } from 'vitest'
import { WorkerSettings } from '../../control-plane/runtime/env.ts'
import { BATCH_COMPLETION_WINDOW_MS, describeIssues } from '../../protocol/index.ts'

const SECRETS = { LIBSQL_URL: 'http://127.0.0.1:8080', ADMIN_TOKEN: 'admin-token-0123456789abcdef' }

describe('Worker settings', () => {
  it("gives batches OpenAI's 24 h window when BATCH_COMPLETION_WINDOW_MS is not set, and the operator's when it is", () => {
    expect(WorkerSettings.parse(SECRETS).BATCH_COMPLETION_WINDOW_MS).toBe(BATCH_COMPLETION_WINDOW_MS)
    expect(WorkerSettings.parse({ ...SECRETS, BATCH_COMPLETION_WINDOW_MS: '3000' }).BATCH_COMPLETION_WINDOW_MS).toBe(3_000)
  })

  it('refuses a completion window under a second, naming the setting', () => {
    const parsed = WorkerSettings.safeParse({ ...SECRETS, BATCH_COMPLETION_WINDOW_MS: '500' })
    expect(parsed.success).toBe(false)
    expect(describeIssues(parsed.error?.issues ?? [])).toBe('BATCH_COMPLETION_WINDOW_MS: Too small: expected number to be >=1000')
  })
})
