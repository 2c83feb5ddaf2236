import { execa } from 'execa'
import type { GpuInfo } from '../../protocol/index.ts'
import { silentLog } from '../log/log.ts'
import type { Log } from '../log/log.ts'

/** Longest wait for nvidia-smi (it hangs when a driver is wedged). */
export const NVIDIA_SMI_TIMEOUT_MS = 10_000

export const NVIDIA_SMI_ARGS = ['--query-gpu=index,name,memory.total,memory.used,utilization.gpu', '--format=csv,noheader,nounits'] as const

function mib(field: string | undefined): number {
  const n = Number(field?.trim())
  return Number.isFinite(n) && n >= 0 ? n : 0
}

/** A percentage, or null for `[N/A]` (GPUs and drivers that do not report it). */
function percent(field: string | undefined): number | null {
  const n = Number(field?.trim())
  return field !== undefined && field.trim() !== '' && Number.isFinite(n) && n >= 0 && n <= 100 ? n : null
}

/** Parses `index, name, memory.total, memory.used, utilization.gpu` lines; a name may itself hold commas. */
export function parseNvidiaSmi(stdout: string): GpuInfo[] {
  const gpus: GpuInfo[] = []
  for (const line of stdout.split('\n')) {
    const fields = line.split(',')
    if (fields.length < 5) continue
    const index = Number(fields[0]?.trim())
    if (!Number.isInteger(index) || index < 0) continue
    gpus.push({
      index,
      name: fields.slice(1, -3).join(',').trim().slice(0, 256),
      memory_total_mib: mib(fields.at(-3)),
      memory_used_mib: mib(fields.at(-2)),
      utilization_percent: percent(fields.at(-1)),
    })
  }
  return gpus
}

/** What `nvidia-smi` said: the GPUs, that it is not installed, or why it failed. */
export type GpuProbe = { kind: 'gpus'; gpus: GpuInfo[] } | { kind: 'no_nvidia_smi' } | { kind: 'failed'; exitCode: number | null; message: string }

/** Runs `nvidia-smi` once. */
export async function probeGpus(): Promise<GpuProbe> {
  const result = await execa('nvidia-smi', NVIDIA_SMI_ARGS, { reject: false, timeout: NVIDIA_SMI_TIMEOUT_MS, stdin: 'ignore' })
  if (!result.failed) return { kind: 'gpus', gpus: parseNvidiaSmi(result.stdout) }
  if (result.code === 'ENOENT') return { kind: 'no_nvidia_smi' }
  return { kind: 'failed', exitCode: result.exitCode ?? null, message: (result.stderr || result.shortMessage || 'failed').slice(0, 500) }
}

/**
 * The node's NVIDIA GPUs, from `nvidia-smi`. No nvidia-smi, or one that fails, means a CPU-only
 * node: an empty list, not an error (a failure is logged).
 */
export async function readGpus({ log = silentLog }: { log?: Log } = {}): Promise<GpuInfo[]> {
  const probe = await probeGpus()
  if (probe.kind === 'failed') log.warn('gpus.nvidia_smi_failed', { exit_code: probe.exitCode, err: probe.message })
  return probe.kind === 'gpus' ? probe.gpus : []
}
