import type { KeyLimits, Priority } from '../../protocol/index.ts'
import type { Generation } from '../task/generation.ts'

/** What the Worker hands over to create a task; the body is already validated. */
export interface TaskSpec {
  taskId: string
  poolId: string
  apiKeyId: string
  keyLimits: KeyLimits
  affinityKey: string | undefined
  priority: Priority | undefined
  /** How long the task waits for its first reader before it expires. */
  attachWithinMs: number
  generation: Extract<Generation, { endpoint: 'chat' | 'completions' }>
  requestId: string | null
}
