import { accessSync, constants } from 'node:fs'
import path from 'node:path'
import type { EngineCommand } from './engine-process.ts'

/** util-linux's `setpriv`, which sets the parent-death signal and then runs the engine in its place. */
const SETPRIV = 'setpriv'

function onPath(name: string, searchPath: string | undefined): string | null {
  for (const dir of (searchPath ?? '').split(path.delimiter)) {
    if (dir === '') continue
    const candidate = path.join(dir, name)
    try {
      accessSync(candidate, constants.X_OK)
      return candidate
    } catch {
      // not in this folder
    }
  }
  return null
}

function runnable(file: string, searchPath: string | undefined): boolean {
  if (!file.includes(path.sep)) return onPath(file, searchPath) !== null
  try {
    accessSync(file, constants.X_OK)
    return true
  } catch {
    return false
  }
}

/**
 * The engine command, run so that the kernel kills the engine when the agent dies without
 * stopping it (SIGKILL, OOM): `setpriv --pdeathsig KILL -- <command>`. setpriv execs the engine,
 * so its pid, process group and start time are the engine's. Where setpriv is missing (not
 * Linux, no util-linux) the command runs as it is, and a killed agent's engines are stopped by
 * the next agent's orphan sweep.
 */
export function dyingWithTheAgent(command: EngineCommand, searchPath: string | undefined = command.env.PATH ?? process.env.PATH): EngineCommand {
  const setpriv = onPath(SETPRIV, searchPath)
  // An engine that cannot be found is spawned as it is, so the failure reads `spawn … ENOENT`.
  if (setpriv === null || !runnable(command.file, searchPath)) return command
  return { ...command, file: setpriv, args: ['--pdeathsig', 'KILL', '--', command.file, ...command.args] }
}
