import type { Registry } from '../../db/client.ts'
import { usage } from '../../db/schema.ts'
import { z } from 'zod'

/** One finished task's usage, as its pool buffers it until the next batch. */
export const BufferedUsage = z.object({
  task_id: z.string(),
  api_key_id: z.string().nullable(),
  prompt_tokens: z.number(),
  completion_tokens: z.number(),
  ended_at: z.number(),
})
export type BufferedUsage = z.infer<typeof BufferedUsage>

/** Usage of finished tasks, buffered by their pool and written in one batch; a repeated row is skipped. */
export async function recordUsage(db: Registry, { poolId, rows }: { poolId: string; rows: readonly BufferedUsage[] }): Promise<void> {
  if (rows.length === 0) return
  await db
    .insert(usage)
    .values(
      rows.map((row) => ({
        apiKeyId: row.api_key_id,
        poolId,
        taskId: row.task_id,
        promptTokens: row.prompt_tokens,
        completionTokens: row.completion_tokens,
        createdAt: new Date(row.ended_at),
      })),
    )
    .onConflictDoNothing()
}
