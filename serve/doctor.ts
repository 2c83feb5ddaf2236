import { execa } from 'execa'
import { existsSync, statSync, statfsSync } from 'node:fs'
import type { Finding } from '../node-agent/checks/finding.ts'
import { LLORCH_VERSION } from '../protocol/index.ts'
import { serveLayout } from './layout.ts'
import { appliedMigrationCount, releaseMigrations } from './migrate-registry.ts'
import { portFree } from './port-free.ts'
import { servedNow, statePaths, type StatePaths } from './state-dir.ts'

/** Below this much free space on the state dir's disk, doctor fails: SQLite needs room for its WAL and VACUUM INTO. */
export const MIN_FREE_DISK_BYTES = 1024 ** 3

function mode(file: string): number {
  return statSync(file).mode & 0o777
}

function checkPermissions(paths: StatePaths): Finding[] {
  const check = 'state dir'
  if (!existsSync(paths.root)) return [{ verdict: 'fail', check, message: `${paths.root} does not exist`, fix: `llorch serve init --state-dir ${paths.root}` }]
  const findings: Finding[] = []
  const rootMode = mode(paths.root)
  findings.push(
    rootMode & 0o077
      ? {
          verdict: 'fail',
          check,
          message: `${paths.root} is mode ${rootMode.toString(8)}: others can read the registry and tokens`,
          fix: `chmod 700 ${paths.root}`,
        }
      : { verdict: 'ok', check, message: `${paths.root} (mode 700)` },
  )
  for (const file of [paths.adminToken, paths.libsqlToken]) {
    if (!existsSync(file)) {
      findings.push({ verdict: 'fail', check: 'secret', message: `${file} is missing`, fix: `llorch serve init --state-dir ${paths.root}` })
      continue
    }
    const fileMode = mode(file)
    findings.push(
      fileMode & 0o077
        ? { verdict: 'fail', check: 'secret', message: `${file} is mode ${fileMode.toString(8)}`, fix: `chmod 600 ${file}` }
        : { verdict: 'ok', check: 'secret', message: `${file} (mode 600)` },
    )
  }
  return findings
}

function checkDisk(paths: StatePaths): Finding {
  if (!existsSync(paths.root)) return { verdict: 'skip', check: 'disk', message: 'no state dir yet' }
  const { bavail, bsize } = statfsSync(paths.root)
  const free = bavail * bsize
  const gib = (free / 1024 ** 3).toFixed(1)
  return free < MIN_FREE_DISK_BYTES
    ? {
        verdict: 'fail',
        check: 'disk',
        message: `${gib} GiB free under ${paths.root}`,
        fix: 'free space: the registry and the Durable Objects stop taking writes when the disk is full',
      }
    : { verdict: 'ok', check: 'disk', message: `${gib} GiB free under ${paths.root}` }
}

async function checkPort(paths: StatePaths, host: string, port: number): Promise<Finding> {
  const running = servedNow(paths)
  if (running) {
    const health = await fetch(`${running.localUrl}/health`).then(
      (r) => r.ok,
      () => false,
    )
    return health
      ? { verdict: 'ok', check: 'port', message: `served now by pid ${running.pid} at ${running.url}` }
      : {
          verdict: 'fail',
          check: 'port',
          message: `pid ${running.pid} serves ${running.url}, which does not answer /health`,
          fix: 'see its log (journalctl -u llorch)',
        }
  }
  return (await portFree(host, port))
    ? { verdict: 'ok', check: 'port', message: `${host}:${port} is free` }
    : { verdict: 'fail', check: 'port', message: `${host}:${port} is in use by another program`, fix: 'stop it, or give llorch serve another --port' }
}

async function checkVersions(paths: StatePaths): Promise<Finding[]> {
  const layout = serveLayout()
  const findings: Finding[] = []
  const workerd = await execa(layout.workerd, ['--version'], { reject: false })
  findings.push(
    workerd.exitCode === 0
      ? { verdict: 'ok', check: 'workerd', message: workerd.stdout.trim() }
      : {
          verdict: 'fail',
          check: 'workerd',
          message: `${layout.workerd} does not run: ${workerd.stderr || workerd.stdout}`,
          fix: 'reinstall the release built for this machine',
        },
  )
  const known = releaseMigrations(layout.migrationsFolder)
  if (!existsSync(paths.registry)) {
    findings.push({ verdict: 'ok', check: 'migrations', message: `no registry yet; llorch ${LLORCH_VERSION} creates it with ${known.length} migrations` })
    return findings
  }
  const applied = await appliedMigrationCount(paths.registry)
  if (applied > known.length)
    findings.push({
      verdict: 'fail',
      check: 'migrations',
      message: `the registry has ${applied} migrations, llorch ${LLORCH_VERSION} knows ${known.length}: a newer release wrote it`,
      fix: 'install that release again (or restore a backup made by this one)',
    })
  else if (applied < known.length)
    findings.push({
      verdict: 'ok',
      check: 'migrations',
      message: `the registry has ${applied} of ${known.length} migrations; the next start applies ${known.slice(applied).join(', ')}`,
    })
  else findings.push({ verdict: 'ok', check: 'migrations', message: `the registry has all ${known.length} migrations of llorch ${LLORCH_VERSION}` })
  return findings
}

/** `llorch serve doctor`: what would stop `llorch serve` from starting or keeping its data. */
export async function doctor({ stateDir, host, port }: { stateDir: string; host: string; port: number }): Promise<Finding[]> {
  const paths = statePaths(stateDir)
  return [...checkPermissions(paths), checkDisk(paths), await checkPort(paths, host, port), ...(await checkVersions(paths))]
}
