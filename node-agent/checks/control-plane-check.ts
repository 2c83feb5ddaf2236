import { hostname } from 'node:os'
import WebSocket from 'ws'
import { z } from 'zod'
import { LLORCH_VERSION, NativeErrorBody, PROTOCOL_VERSION, parseControlFrame } from '../../protocol/index.ts'
import type { GpuInfo, Hello } from '../../protocol/index.ts'
import { connectUrl } from '../link/link.ts'
import type { Finding } from './finding.ts'

/** How long each HTTP probe of the control plane may take. */
export const PROBE_TIMEOUT_MS = 10_000
/** How long the WebSocket upgrade plus hello → welcome may take. */
export const HANDSHAKE_CHECK_TIMEOUT_MS = 15_000
/** The close code and reason doctor ends its trial connection with. */
const CLOSE_NORMAL = 1000
const CLOSE_REASON = 'llorch-agent doctor'

const Health = z.object({ status: z.literal('ok'), version: z.string() })

/** The control plane's HTTP origin and path prefix, from a `control_plane_url` of any accepted scheme. */
export function controlPlaneHttpUrl(controlPlaneUrl: string): string {
  const url = new URL(controlPlaneUrl)
  if (url.protocol === 'wss:') url.protocol = 'https:'
  if (url.protocol === 'ws:') url.protocol = 'http:'
  url.pathname = url.pathname.replace(/\/v2\/agent\/connect\/?$/, '').replace(/\/$/, '')
  url.search = ''
  return url.toString().replace(/\/$/, '')
}

/** "fetch failed: getaddrinfo ENOTFOUND host", with the causes that say why. */
function describeFailure(error: unknown): string {
  const parts: string[] = []
  for (let current: unknown = error; current instanceof Error; current = current.cause) {
    if (current.name === 'TimeoutError') parts.push(`no answer within ${PROBE_TIMEOUT_MS} ms`)
    else if (current.message && !parts.includes(current.message)) parts.push(current.message)
  }
  return parts.join(': ') || String(error)
}

/** The message of a refusal: the control plane's error message, else the start of the body. */
function refusalMessage(body: string, status: number | undefined): string {
  try {
    const parsed = NativeErrorBody.safeParse(JSON.parse(body))
    if (parsed.success) return parsed.data.error.message
  } catch {
    // not JSON: shown as text
  }
  return body.slice(0, 200) || `HTTP ${status ?? 'without a status'}`
}

/** `GET /health`: the control plane answers, and which llorch it runs. */
export async function checkReachable(base: string, { configFile }: { configFile: string }): Promise<Finding> {
  const check = 'control plane'
  const field = 'control_plane_url'
  let response: Response
  try {
    response = await fetch(`${base}/health`, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) })
  } catch (error) {
    return {
      verdict: 'fail',
      check,
      field,
      message: `cannot reach ${base}: ${describeFailure(error)}`,
      fix: `check control_plane_url in ${configFile}, DNS, and that this machine may open outbound HTTPS connections (proxy, firewall)`,
    }
  }
  const health = Health.safeParse(await response.json().catch(() => null))
  if (response.status !== 200 || !health.success) {
    return {
      verdict: 'fail',
      check,
      field,
      message: `${base}/health answered ${response.status} without llorch's {status, version}: not a llorch control plane`,
      fix: `set control_plane_url in ${configFile} to your llorch Worker (https://llorch.<account>.workers.dev)`,
    }
  }
  return { verdict: 'ok', check, field, message: `${base} answers: llorch ${health.data.version} (this agent: ${LLORCH_VERSION})` }
}

/**
 * The node token, checked by the connect endpoint without an upgrade: 426 means accepted, 401
 * says why not. No socket is opened, so a running agent keeps its connection.
 */
export async function checkTokenAccepted(base: string, token: string, { tokenSource }: { tokenSource: string }): Promise<Finding> {
  const check = 'node token'
  let response: Response
  try {
    response = await fetch(`${base}/v2/agent/connect`, { headers: { Authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) })
  } catch (error) {
    return { verdict: 'fail', check, message: `the token check failed: ${describeFailure(error)}`, fix: 'see the control plane line above' }
  }
  if (response.status === 426) {
    const body = NativeErrorBody.safeParse(await response.json().catch(() => null))
    const nodeId = body.success ? body.data.error.details?.node_id : undefined
    return { verdict: 'ok', check, message: `accepted${typeof nodeId === 'string' ? ` as node ${nodeId}` : ''}` }
  }
  const message = refusalMessage(await response.text().catch(() => ''), response.status)
  if (response.status === 401 || response.status === 403) {
    return {
      verdict: 'fail',
      check,
      message: `refused (${response.status}): ${message}`,
      fix: `put the token that POST /v2/nodes printed for this node in ${tokenSource} (a token is shown once; create a new node if it is lost)`,
    }
  }
  return {
    verdict: 'skip',
    check,
    message: `the control plane answered ${response.status} (${message}) without checking the token; the link check below tells`,
  }
}

type HandshakeResult = { ok: true; nodeId: string; heartbeatMs: number } | { ok: false; message: string }

function handshake(url: string, token: string, hello: Hello): Promise<HandshakeResult> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers: { Authorization: `Bearer ${token}` }, handshakeTimeout: HANDSHAKE_CHECK_TIMEOUT_MS })
    let settled = false
    const finish = (result: HandshakeResult) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      if (ws.readyState === WebSocket.OPEN) ws.close(CLOSE_NORMAL, CLOSE_REASON)
      else ws.terminate()
      resolve(result)
    }
    const timer = setTimeout(() => finish({ ok: false, message: `no welcome within ${HANDSHAKE_CHECK_TIMEOUT_MS} ms` }), HANDSHAKE_CHECK_TIMEOUT_MS)
    ws.on('unexpected-response', (_request, response) => {
      let body = ''
      response.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')))
      response.on('end', () =>
        finish({ ok: false, message: `the upgrade was refused with ${response.statusCode ?? 'no status'}: ${refusalMessage(body, response.statusCode)}` }),
      )
    })
    ws.on('open', () => ws.send(JSON.stringify(hello)))
    ws.on('message', (data) => {
      const parsed = parseControlFrame(data.toString())
      if (!parsed.ok) return
      const frame = parsed.frame
      if (frame.type === 'welcome') finish({ ok: true, nodeId: frame.node_id, heartbeatMs: frame.heartbeat_interval_ms })
      else if (frame.type === 'error') finish({ ok: false, message: `${frame.code}: ${frame.message}` })
    })
    ws.on('error', (error) => finish({ ok: false, message: error.message }))
    ws.on('close', (code, reason) =>
      finish({ ok: false, message: `the socket closed before the welcome (${code}${reason.length > 0 ? `: ${reason.toString()}` : ''})` }),
    )
  })
}

/**
 * The whole link once: WebSocket upgrade, hello (with no replicas), welcome, close. Only when no
 * agent runs with this config: a second connection from the node would replace the agent's.
 */
export async function checkLink(controlPlaneUrl: string, token: string, { gpus }: { gpus: GpuInfo[] }): Promise<Finding> {
  const hello: Hello = { type: 'hello', protocol: PROTOCOL_VERSION, agent_version: LLORCH_VERSION, hostname: hostname(), gpus, replicas: [], running_tasks: [] }
  const url = connectUrl(controlPlaneUrl)
  const result = await handshake(url, token, hello)
  if (result.ok) {
    return {
      verdict: 'ok',
      check: 'agent link',
      message: `${url}: hello answered with welcome (node ${result.nodeId}, protocol ${PROTOCOL_VERSION}, heartbeat every ${result.heartbeatMs} ms)`,
    }
  }
  return {
    verdict: 'fail',
    check: 'agent link',
    message: `${url}: ${result.message}`,
    fix: 'a proxy between this machine and the control plane must pass WebSocket upgrades; a protocol mismatch means upgrading the older of agent and control plane',
  }
}
