import { readFileSync } from 'node:fs'
import { ConfigError } from '../config/errors.ts'
import type { AgentConfig } from '../config/schema.ts'

/**
 * The node token from `node_token` or `node_token_file` (first line, trimmed), or null when the
 * config has no control plane. A token file that cannot be read is a config error naming it.
 */
export function readNodeToken(config: AgentConfig, file: string): string | null {
  if (config.node_token) return config.node_token
  if (!config.node_token_file) return null
  let token: string
  try {
    token = readFileSync(config.node_token_file, 'utf8').split('\n')[0]?.trim() ?? ''
  } catch (error) {
    const reason = error instanceof Error && 'code' in error ? String(error.code) : String(error)
    throw new ConfigError(file, [{ path: 'node_token_file', message: `cannot read ${config.node_token_file} (${reason})` }])
  }
  if (token.length < 16)
    throw new ConfigError(file, [
      { path: 'node_token_file', message: `${config.node_token_file} does not hold a node token (expected the lln.… token POST /v2/nodes printed)` },
    ])
  return token
}
