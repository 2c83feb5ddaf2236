import type { Registry } from '../../db/client.ts'
import { usage } from '../../db/schema.ts'
import type { Usage } from '../../protocol/index.ts'

/** One row per finished task, written after its last token, never on the token path. */
export async function recordUsage(db: Registry, { apiKeyId, poolId, taskId, usage: used }: { apiKeyId: string | null; poolId: string; taskId: string; usage: Usage }): Promise<void> {
  await db
    .insert(usage)
    .values({ apiKeyId, poolId, taskId, promptTokens: used.prompt_tokens, completionTokens: used.completion_tokens })
    .onConflictDoNothing()
}
