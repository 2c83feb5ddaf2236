import { findExecutable } from '../checks/find-executable.ts'

/** The engines `init` looks for on PATH, in the order it prefers them. */
export const DETECTED_ENGINES = [
  { engine: 'llamacpp', program: 'llama-server' },
  { engine: 'vllm', program: 'vllm' },
  { engine: 'ollama', program: 'ollama' },
] as const

export type DetectableEngine = (typeof DETECTED_ENGINES)[number]['engine']

export interface FoundEngine {
  engine: DetectableEngine
  /** Absolute, so the service finds it whatever PATH systemd gives it. */
  binary: string
}

/** The engines whose program is on `PATH`. */
export function detectEngines({ PATH = process.env.PATH ?? '' }: { PATH?: string } = {}): FoundEngine[] {
  return DETECTED_ENGINES.flatMap(({ engine, program }) => {
    const binary = findExecutable(program, { PATH })
    return binary ? [{ engine, binary }] : []
  })
}
