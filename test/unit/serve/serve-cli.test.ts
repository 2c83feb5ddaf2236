import { execa } from 'execa'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { REPO_ROOT } from '../../support/processes.ts'

const LLORCH = path.join(REPO_ROOT, 'cli/llorch.ts')

describe('llorch serve flags', () => {
  let dir: string | undefined
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true })
    dir = undefined
  })

  it('exits 2 naming the flag for a bad port or a certificate without its key', async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'llorch-serve-cli-'))
    const port = await execa(process.execPath, [LLORCH, 'serve', '--state-dir', dir, '--port', 'abc'], { reject: false })
    expect(port.exitCode).toBe(2)
    expect(port.stderr).toBe('llorch: serve: --port: expected an integer 0–65535')
    const tls = await execa(process.execPath, [LLORCH, 'serve', '--state-dir', dir, '--tls-cert', 'cert.pem'], { reject: false })
    expect(tls.exitCode).toBe(2)
    expect(tls.stderr).toBe('llorch: serve: --tls-key: give --tls-cert and --tls-key together')
  })

  it('exits 1 with one line when the port is taken, before starting anything', async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'llorch-serve-cli-'))
    const holder = createServer()
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve))
    const address = holder.address()
    const taken = typeof address === 'object' && address !== null ? address.port : 0
    try {
      const result = await execa(process.execPath, [LLORCH, 'serve', '--state-dir', dir, '--port', String(taken)], { reject: false })
      expect(result.exitCode).toBe(1)
      expect(result.stderr).toBe(
        `llorch: serve: 127.0.0.1:${taken} is already in use (another llorch serve or npm start?); give --port another one (0 picks a free one)`,
      )
    } finally {
      holder.close()
    }
  })
})
