import { z } from 'zod'

/** Which adapter drives a replica's engine process. */
export const EngineKind = z.enum(['llamacpp', 'vllm', 'ollama', 'openai', 'command'])
export type EngineKind = z.infer<typeof EngineKind>
