import type { AgentConfig } from '../config/schema.ts'
import type { GpuProbe } from '../gpus/gpus.ts'
import type { Finding } from './finding.ts'

/**
 * The GPUs `nvidia-smi` lists, and that every GPU index a pool names is among them. No
 * nvidia-smi is a CPU-only node, which is valid; a failing nvidia-smi is a driver problem.
 */
export function checkGpus(config: AgentConfig, probe: GpuProbe): Finding[] {
  const check = 'gpus'
  const wanted = config.pools.flatMap((pool, i) =>
    (pool.gpus ?? []).filter((g) => typeof g === 'number').map((index) => ({ index, field: `pools[${i}].gpus` })),
  )
  if (probe.kind === 'no_nvidia_smi') {
    const findings: Finding[] = [{ verdict: 'ok', check, message: 'no nvidia-smi on PATH: a CPU-only node' }]
    for (const { index, field } of wanted) {
      findings.push({
        verdict: 'fail',
        check,
        field,
        message: `GPU ${index} is named, but this node has no nvidia-smi`,
        fix: `install the NVIDIA driver (it brings nvidia-smi), or remove ${field}`,
      })
    }
    return findings
  }
  if (probe.kind === 'failed') {
    return [
      {
        verdict: 'fail',
        check,
        message: `nvidia-smi failed (exit ${probe.exitCode ?? 'none'}): ${probe.message.split('\n')[0] ?? ''}`,
        fix: 'run nvidia-smi by itself; reinstall or reload the NVIDIA driver (a reboot after a driver upgrade)',
      },
    ]
  }
  const listed = probe.gpus.map((g) => `${g.index} ${g.name} (${g.memory_total_mib} MiB)`).join(', ')
  const findings: Finding[] = [
    {
      verdict: 'ok',
      check,
      message:
        probe.gpus.length === 0 ? 'nvidia-smi lists no GPU: a CPU-only node' : `${probe.gpus.length} GPU${probe.gpus.length === 1 ? '' : 's'}: ${listed}`,
    },
  ]
  const indexes = new Set(probe.gpus.map((g) => g.index))
  for (const { index, field } of wanted) {
    if (!indexes.has(index)) {
      const have = [...indexes].join(', ') || 'none'
      findings.push({
        verdict: 'fail',
        check,
        field,
        message: `GPU ${index} is not on this node (nvidia-smi lists ${have})`,
        fix: `set ${field} to GPUs this node has`,
      })
    }
  }
  return findings
}
