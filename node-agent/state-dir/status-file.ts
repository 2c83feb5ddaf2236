import { readFileSync, renameSync, rmSync, writeFileSync, mkdirSync } from 'node:fs'
import path from 'node:path'
import { z } from 'zod'
import { ReplicaReport } from '../../protocol/index.ts'

/** What a running agent tells `llorch-agent status`, rewritten on every replica state change. */
export const AgentStatus = z.object({
  agent_pid: z.int().positive(),
  agent_version: z.string(),
  started_at: z.string(),
  updated_at: z.string(),
  config_path: z.string().nullable(),
  replicas: z.array(ReplicaReport),
  running_tasks: z.int().nonnegative(),
})
export type AgentStatus = z.infer<typeof AgentStatus>

export function statusFilePath(stateDir: string): string {
  return path.join(stateDir, 'status.json')
}

/** Replaces the status file atomically (write, then rename). */
export function writeStatusFile(stateDir: string, status: AgentStatus): void {
  mkdirSync(stateDir, { recursive: true })
  const file = statusFilePath(stateDir)
  writeFileSync(`${file}.tmp`, `${JSON.stringify(status, null, 2)}\n`)
  renameSync(`${file}.tmp`, file)
}

/** The status file, or null when there is none or it cannot be read. */
export function readStatusFile(stateDir: string): AgentStatus | null {
  try {
    const parsed = AgentStatus.safeParse(JSON.parse(readFileSync(statusFilePath(stateDir), 'utf8')))
    return parsed.success ? parsed.data : null
  } catch {
    return null
  }
}

export function removeStatusFile(stateDir: string): void {
  rmSync(statusFilePath(stateDir), { force: true })
}
