import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { z } from 'zod'
import { ConfigError } from '../../node-agent/config/errors.ts'
import { parseAgentConfig } from '../../node-agent/config/load.ts'
import type { AgentConfig } from '../../node-agent/config/schema.ts'
import { PROJECT_ROOT } from './project-root.ts'

/** The pool a new local agent config serves with the fake engine. */
export const DEMO_POOL = 'demo-model'
/** Beside the config; the config names it relative to itself. */
export const NODE_TOKEN_FILE = 'node-token'

/** The fields `npm start` owns in the local agent config; everything else is the user's. */
export interface AgentConnection {
  controlPlaneUrl: string
  nodeToken: string
}

export type PreparedAgentConfig = { ok: true; config: AgentConfig; created: boolean; changed: string[] } | { ok: false; message: string }

const ConfigObject = z.record(z.string(), z.unknown())

function demoConfig(stateDir: string): Record<string, unknown> {
  return {
    state_dir: path.join(stateDir, 'agent'),
    pools: [
      {
        id: DEMO_POOL,
        engine: 'command',
        command: ['{node}', path.join(PROJECT_ROOT, 'test/fixtures/fake-engine.ts'), '--port', '{port}', '--slots', '{slots}', '--model-name', '{pool}'],
        args: ['--load-ms', '500', '--tokens', '48', '--tokens-per-second', '40', '--engine-version', 'demo'],
        slots: 4,
        start_timeout_ms: 30_000,
      },
    ],
  }
}

/**
 * The local agent's config, `<state dir>/agent.json`: written with the demo pool when there is
 * none, and after that left as the user edited it except for the connection (control-plane URL
 * and token file), which follows the running stack. The token itself lives in `node-token`
 * beside it, so a new node changes no line of the config.
 */
export function prepareAgentConfig(stateDir: string, connection: AgentConnection): PreparedAgentConfig {
  const file = path.join(stateDir, 'agent.json')
  writeFileSync(path.join(stateDir, NODE_TOKEN_FILE), `${connection.nodeToken}\n`, { mode: 0o600 })
  const created = !existsSync(file)
  let input: Record<string, unknown>
  if (created) {
    input = demoConfig(stateDir)
  } else {
    let parsed: z.ZodSafeParseResult<Record<string, unknown>>
    try {
      parsed = ConfigObject.safeParse(JSON.parse(readFileSync(file, 'utf8')))
    } catch (error) {
      return {
        ok: false,
        message: `${file}: not valid JSON (${error instanceof Error ? error.message : String(error)}); fix it, or delete it for a new one with the demo pool`,
      }
    }
    if (!parsed.success) return { ok: false, message: `${file}: expected a JSON object; fix it, or delete it for a new one with the demo pool` }
    input = parsed.data
  }
  const wanted = { control_plane_url: connection.controlPlaneUrl, node_token_file: NODE_TOKEN_FILE }
  const changed = created
    ? []
    : Object.entries(wanted)
        .filter(([key, value]) => input[key] !== value)
        .map(([key]) => key)
  if ('node_token' in input) changed.push('node_token')
  const { node_token: _inline, ...rest } = input
  const next = created ? { ...wanted, ...rest } : { ...rest, ...wanted }
  let config: AgentConfig
  try {
    config = parseAgentConfig(next, { file, baseDir: stateDir })
  } catch (error) {
    if (error instanceof ConfigError) return { ok: false, message: `${error.message}\nFix ${file}, or delete it for a new one with the demo pool.` }
    throw error
  }
  if (created || changed.length > 0) writeFileSync(file, `${JSON.stringify(next, null, 2)}\n`)
  return { ok: true, config, created, changed }
}
