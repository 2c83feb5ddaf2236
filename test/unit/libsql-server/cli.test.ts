import { createClient } from '@libsql/client'
import { execa, type ResultPromise } from 'execa'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { afterEach, describe, expect, it } from 'vitest'
import { z } from 'zod'

const CLI = path.resolve(import.meta.dirname, '../../../db/libsql-server/cli.ts')
const START_TIMEOUT_MS = 10_000

const ListeningLine = z.object({ event: z.literal('libsql.listening'), url: z.string(), file: z.string() })

/** The stdout line that announces the listening URL; fails after START_TIMEOUT_MS. */
function listeningLine(child: ResultPromise): Promise<z.infer<typeof ListeningLine>> {
  const { stdout } = child
  if (!stdout) throw new Error('expected the CLI stdout to be piped')
  const lines = createInterface({ input: stdout })
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the CLI did not log libsql.listening within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS)
    lines.on('line', (line) => {
      const parsed = ListeningLine.safeParse(JSON.parse(line))
      if (!parsed.success) return
      clearTimeout(timer)
      resolve(parsed.data)
    })
  })
}

describe('libsql server CLI', () => {
  let dir: string | undefined
  let child: ResultPromise | undefined
  afterEach(() => {
    child?.kill('SIGKILL')
    child = undefined
    if (dir) rmSync(dir, { recursive: true, force: true })
    dir = undefined
  })

  it('logs the real URL for port 0, serves clients and exits cleanly on SIGTERM', async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'llorch-libsql-cli-'))
    const file = path.join(dir, 'nested', 'registry.db')
    child = execa(process.execPath, [CLI, '--port', '0', '--file', file, '--auth-token', 'cli-token'], { reject: false, buffer: { stdout: false } })
    const { url } = await listeningLine(child)
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect(url).not.toMatch(/:0$/)

    const client = createClient({ url, authToken: 'cli-token' })
    await client.execute('CREATE TABLE t (x)')
    expect((await client.execute('SELECT count(*) AS n FROM t')).rows[0]?.n).toBe(0)
    client.close()

    child.kill('SIGTERM')
    const result = await child
    expect(result.exitCode).toBe(0)
  })

  it('reads the token from --auth-token-file, so it stays out of ps', async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'llorch-libsql-cli-'))
    const tokenFile = path.join(dir, 'token')
    writeFileSync(tokenFile, 'file-token\n', { mode: 0o600 })
    child = execa(process.execPath, [CLI, '--port', '0', '--file', path.join(dir, 'registry.db'), '--auth-token-file', tokenFile], {
      reject: false,
      buffer: { stdout: false },
    })
    const { url } = await listeningLine(child)
    const anonymous = createClient({ url })
    await expect(anonymous.execute('SELECT 1')).rejects.toMatchObject({ code: 'UNAUTHORIZED' })
    const client = createClient({ url, authToken: 'file-token' })
    expect((await client.execute('SELECT 1 AS one')).rows[0]?.one).toBe(1)
    client.close()
    anonymous.close()
  })

  it('exits with status 2 and names the option when an argument is invalid', async () => {
    const result = await execa(process.execPath, [CLI, '--port', '80a'], { reject: false })
    expect(result.exitCode).toBe(2)
    expect(result.stderr).toContain('port: expected an integer 0–65535')
  })
})
