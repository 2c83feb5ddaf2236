import type { AgentConfig } from './schema.ts'

/** `2 pools: a (llamacpp), b (vllm, on-demand)`, as the CLI prints a loaded config. */
export function describePools(config: AgentConfig): string {
  const pools = config.pools.map((p) => `${p.id} (${p.engine}${p.preload === 'on-demand' ? ', on-demand' : ''})`)
  return `${pools.length} pool${pools.length === 1 ? '' : 's'}: ${pools.join(', ')}`
}
