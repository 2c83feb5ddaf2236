import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { CreateNodeResponse } from '../../protocol/index.ts'
import { NodeView, PoolView } from '../../protocol/index.ts'
import { spawnAgentCli } from './agents.ts'
import type { CliAgent } from './agents.ts'
import { waitFor } from './processes.ts'
import type { useProcessCleanup } from './processes.ts'
import type { Stack } from './local-stack.ts'

export interface LinkedAgent extends CliAgent {
  nodeId: string
  token: string
  stateDir: string
  configFile: string
}

/** Registers a node through the admin API and returns its id and token (shown once). */
export async function createNode(stack: Stack, name: string): Promise<{ id: string; token: string }> {
  const response = await stack.admin('POST', '/v2/nodes', { name })
  if (response.status !== 201) throw new Error(`POST /v2/nodes answered ${response.status}: ${await response.text()}`)
  return CreateNodeResponse.parse(await response.json())
}

/**
 * Starts `llorch-agent run` as its own process, linked to the stack's control plane with a fresh
 * node token, serving the given fake-engine pools.
 */
export async function startLinkedAgent(
  cleanup: ReturnType<typeof useProcessCleanup>,
  stack: Stack,
  {
    name,
    pools,
    node,
    config = {},
    env,
  }: { name: string; pools: Record<string, unknown>[]; node?: { id: string; token: string }; config?: Record<string, unknown>; env?: Record<string, string> },
): Promise<LinkedAgent> {
  const { id, token } = node ?? (await createNode(stack, name))
  const stateDir = cleanup.stateDir()
  const configFile = path.join(stateDir, 'agent.json')
  writeFileSync(
    configFile,
    JSON.stringify(
      {
        control_plane_url: stack.url.toString(),
        node_token: token,
        state_dir: stateDir,
        log_level: 'debug',
        shutdown_drain_ms: 2_000,
        reconnect_max_ms: 500,
        pools,
        ...config,
      },
      null,
      2,
    ),
  )
  const agent = spawnAgentCli(cleanup, configFile, { env })
  return { ...agent, nodeId: id, token, stateDir, configFile }
}

export async function getNode(stack: Stack, id: string): Promise<NodeView> {
  return NodeView.parse(await (await stack.admin('GET', `/v2/nodes/${id}`)).json())
}

/**
 * Waits for a heartbeat of the node after `since` (taken once a restarted control plane is up):
 * the registry still says `online` from before, so only a later `last_seen_at` shows the agent is back.
 */
export async function waitForHeartbeatAfter(stack: Stack, nodeId: string, since: number, timeoutMs: number): Promise<void> {
  await waitFor(
    async () => {
      const node = await getNode(stack, nodeId)
      return node.status === 'online' && node.last_seen_at !== null && Date.parse(node.last_seen_at) > since
    },
    { timeoutMs, message: `a heartbeat of ${nodeId} after the restart` },
  )
}

export async function getPool(stack: Stack, id: string): Promise<PoolView | null> {
  const response = await stack.admin('GET', `/v2/pools/${id}`)
  if (response.status === 404) return null
  return PoolView.parse(await response.json())
}
