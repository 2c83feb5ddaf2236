import { describePools } from '../config/describe-pools.ts'
import { ConfigError } from '../config/errors.ts'
import { loadConfig } from '../config/load.ts'
import type { GpuInfo } from '../../protocol/index.ts'
import type { AgentConfig } from '../config/schema.ts'
import { probeGpus } from '../gpus/gpus.ts'
import { readNodeToken } from '../link/node-token.ts'
import { lockHolder } from '../state-dir/agent-lock.ts'
import { checkLink, checkReachable, checkTokenAccepted, controlPlaneHttpUrl } from './control-plane-check.ts'
import { failed, renderFinding } from './finding.ts'
import type { Finding } from './finding.ts'
import { checkGpus } from './gpu-check.ts'
import { checkLocalFiles } from './local-files.ts'
import { checkSourcesReachable } from './source-check.ts'

function configFindings(file: string): { config: AgentConfig | null; findings: Finding[] } {
  try {
    const config = loadConfig(file)
    return { config, findings: [{ verdict: 'ok', check: 'config', message: `${file}: ${describePools(config)}` }] }
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error
    const fix = `edit ${file} (llorch-agent validate lists the same problems)`
    return {
      config: null,
      findings: error.problems.map((p) => ({ verdict: 'fail', check: 'config', ...(p.path ? { field: p.path } : {}), message: p.message, fix })),
    }
  }
}

async function controlPlaneFindings(config: AgentConfig, file: string, gpus: GpuInfo[]): Promise<Finding[]> {
  const url = config.control_plane_url
  if (!url) return [{ verdict: 'skip', check: 'control plane', message: 'no control_plane_url: the agent runs standalone' }]
  const base = controlPlaneHttpUrl(url)
  const reachable = await checkReachable(base, { configFile: file })
  if (reachable.verdict !== 'ok') return [reachable]
  let token: string | null = null
  try {
    token = readNodeToken(config, file)
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error
  }
  if (!token) return [reachable, { verdict: 'skip', check: 'node token', message: 'no token to send (see the token file line above)' }]
  const tokenSource = config.node_token_file ?? `node_token in ${file}`
  const accepted = await checkTokenAccepted(base, token, { tokenSource })
  if (accepted.verdict === 'fail') return [reachable, accepted]
  const running = lockHolder(config.state_dir)
  const link: Finding = running
    ? {
        verdict: 'skip',
        check: 'agent link',
        message: `the agent (pid ${running.pid}) runs with this state dir and holds the link; a second connection would replace it`,
      }
    : await checkLink(url, token, { gpus })
  return [reachable, accepted, link]
}

/**
 * `llorch-agent doctor`: everything `validate` checks, then the model and engine sources (asked,
 * nothing downloaded), the GPUs, the control plane, the
 * node token and one trial link. Prints one line per check with its verdict and, for a failure,
 * the fix; returns the exit code (1 when anything failed).
 */
export async function runDoctor(file: string, write: (line: string) => void): Promise<number> {
  const { config, findings } = configFindings(file)
  if (config) {
    const probe = await probeGpus()
    findings.push(...(await checkLocalFiles(config)), ...(await checkSourcesReachable(config, { configFile: file })), ...checkGpus(config, probe))
    findings.push(...(await controlPlaneFindings(config, file, probe.kind === 'gpus' ? probe.gpus : [])))
  }
  for (const finding of findings) write(renderFinding(finding))
  const problems = failed(findings).length
  write(
    problems === 0
      ? `doctor: no problems (${findings.length} checks)`
      : `doctor: ${problems} problem${problems === 1 ? '' : 's'}; fix ${problems === 1 ? 'it' : 'them'} and run llorch-agent doctor again`,
  )
  return problems === 0 ? 0 : 1
}
