import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { resolvePort } from '../../../node-agent/process/port.ts'
import { doctor } from '../../../serve/doctor.ts'
import { init } from '../../../serve/init.ts'
import { appliedMigrationCount, releaseMigrations } from '../../../serve/migrate-registry.ts'
import { REPO_ROOT } from '../../support/processes.ts'

describe('llorch serve init and doctor', () => {
  it('init makes a private state dir with its tokens and a migrated registry, keeps them the second time, and doctor finds it sound until a mode is loosened', async () => {
    const parent = mkdtempSync(path.join(tmpdir(), 'llorch-serve-init-'))
    const stateDir = path.join(parent, 'state')
    try {
      const first = await init(stateDir)
      expect(first[0]).toBe(`wrote the admin token to ${path.join(stateDir, 'admin-token')} (mode 0600); it is not printed`)
      const token = readFileSync(path.join(stateDir, 'admin-token'), 'utf8')
      expect(statSync(stateDir).mode & 0o777).toBe(0o700)
      expect(statSync(path.join(stateDir, 'libsql-token')).mode & 0o777).toBe(0o600)
      expect(await appliedMigrationCount(path.join(stateDir, 'registry.db'))).toBe(releaseMigrations(path.join(REPO_ROOT, 'migrations')).length)
      expect((await init(stateDir))[0]).toBe(`admin token: ${path.join(stateDir, 'admin-token')} exists, kept`)
      expect(readFileSync(path.join(stateDir, 'admin-token'), 'utf8')).toBe(token)

      const port = await resolvePort({ port: 'auto', host: '127.0.0.1' })
      const sound = await doctor({ stateDir, host: '127.0.0.1', port })
      expect(sound.filter((f) => f.verdict === 'fail')).toEqual([])
      expect(sound.map((f) => f.check)).toEqual(['state dir', 'secret', 'secret', 'disk', 'port', 'workerd', 'migrations'])

      chmodSync(stateDir, 0o755)
      const loose = await doctor({ stateDir, host: '127.0.0.1', port })
      expect(loose.find((f) => f.verdict === 'fail')).toEqual({
        verdict: 'fail',
        check: 'state dir',
        message: `${stateDir} is mode 755: others can read the registry and tokens`,
        fix: `chmod 700 ${stateDir}`,
      })
    } finally {
      rmSync(parent, { recursive: true, force: true })
    }
  })
})
