import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { hostname } from 'node:os'
import path from 'node:path'
import { parse as parseYaml } from 'yaml'
import { z } from 'zod'
import { ConfigError } from '../node-agent/config/errors.ts'
import { parseAgentConfig } from '../node-agent/config/load.ts'
import { CreateNodeResponse, NodeView } from '../protocol/index.ts'
import type { StatePaths } from './state-dir.ts'

const LocalNode = z.object({ id: z.string().min(1) })
const ConfigObject = z.record(z.string(), z.unknown())

type Admin = (method: string, route: string, body?: unknown) => Promise<Response>

/**
 * The node the home box's own agent connects as: the one created on an earlier start while it
 * exists and is not revoked, else a new one. Its token is kept in the state dir (0600).
 */
export async function ensureLocalNode(paths: StatePaths, admin: Admin): Promise<string> {
  const known = existsSync(paths.localNode) && existsSync(paths.localNodeToken) ? LocalNode.safeParse(JSON.parse(readFileSync(paths.localNode, 'utf8'))) : null
  if (known?.success) {
    const response = await admin('GET', `/v2/nodes/${encodeURIComponent(known.data.id)}`)
    if (response.status === 200 && NodeView.parse(await response.json()).status !== 'revoked') return known.data.id
  }
  const response = await admin('POST', '/v2/nodes', { name: `${hostname()}-serve`, labels: { serve: 'local' } })
  if (response.status !== 201) throw new Error(`creating the local node answered ${response.status}: ${await response.text()}`)
  const created = CreateNodeResponse.parse(await response.json())
  writeFileSync(paths.localNodeToken, `${created.token}\n`, { mode: 0o600 })
  writeFileSync(paths.localNode, `${JSON.stringify({ id: created.id }, null, 2)}\n`, { mode: 0o600 })
  return created.id
}

/**
 * The agent config llorch serve runs: the operator's file (JSON or YAML) with the connection
 * set to this control plane and the local node's token file, written to the state dir.
 * Paths the file gave relative to itself are made absolute first, so they still point where
 * the operator meant. Throws naming the operator's file and field.
 */
export function writeLocalAgentConfig(paths: StatePaths, userFile: string, controlPlaneUrl: string): string {
  const file = path.resolve(userFile)
  let raw: unknown
  try {
    raw = parseYaml(readFileSync(file, 'utf8'))
  } catch (error) {
    throw new Error(`${file}: cannot read the agent config (${error instanceof Error ? error.message : String(error)})`)
  }
  const object = ConfigObject.safeParse(raw)
  if (!object.success) throw new Error(`${file}: expected an agent config object (see node-agent/examples)`)
  const { node_token: _inline, ...rest } = object.data
  const input = { state_dir: paths.agentDir, ...rest, control_plane_url: controlPlaneUrl, node_token_file: paths.localNodeToken }
  let parsed
  try {
    parsed = parseAgentConfig(input, { file, baseDir: path.dirname(file) })
  } catch (error) {
    if (error instanceof ConfigError) throw new Error(error.message)
    throw error
  }
  const pools: unknown[] = Array.isArray(rest.pools) ? rest.pools : []
  const derived = {
    ...input,
    state_dir: parsed.state_dir,
    // {node} and {config_dir} are filled as the operator's file would have them.
    pools: pools.map((pool, i) => {
      const resolved = parsed.pools[i]
      return resolved?.engine === 'command' ? { ...ConfigObject.parse(pool), command: resolved.command } : pool
    }),
  }
  mkdirSync(paths.agentDir, { recursive: true, mode: 0o700 })
  writeFileSync(paths.agentConfig, `${JSON.stringify(derived, null, 2)}\n`, { mode: 0o600 })
  return paths.agentConfig
}
