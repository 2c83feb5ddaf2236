/**
 * Download throughput of the agent (the provisioner: fetch, Range-ready `.incomplete` file,
 * streaming sha256, rename into the cache) against `curl -o` of the same file from the same
 * server, the stand-in Hub in a process of its own. Prints MB/s of each (best of the rounds) and
 * the agent/curl ratio.
 *
 *   npx node scripts/bench-download.ts [--mb 256] [--rounds 3]
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { execa } from 'execa'
import { PoolConfig } from '../node-agent/config/schema.ts'
import { Provisioner } from '../node-agent/provision/provisioner.ts'
import { modelBytes, sha256Of, startHubServer } from '../test/fixtures/hub-server.ts'

const { values } = parseArgs({
  options: { mb: { type: 'string', default: '256' }, rounds: { type: 'string', default: '3' }, serve: { type: 'boolean', default: false } },
})
const bytes = Number(values.mb) * 1_000_000

if (values.serve) {
  const file = modelBytes(bytes, 5)
  const server = await startHubServer({ files: { 'model.bin': file } })
  process.stdout.write(`${JSON.stringify({ url: `${server.url}/files/model.bin`, sha256: sha256Of(file) })}\n`)
} else {
  const server = execa(process.execPath, [import.meta.filename, '--serve', '--mb', String(values.mb)], { reject: false })
  try {
    const ready = await new Promise<{ url: string; sha256: string }>((resolve, reject) => {
      server.stdout.setEncoding('utf8')
      server.stdout.once('data', (line: string) => resolve(JSON.parse(line)))
      void server.then((result) => reject(new Error(`the server exited: ${String(result.stderr)}`)))
    })
    const rounds = Number(values.rounds)
    const timed = async (work: () => Promise<unknown>) => {
      let best = Infinity
      for (let i = 0; i < rounds; i++) {
        const started = performance.now()
        await work()
        best = Math.min(best, performance.now() - started)
      }
      return bytes / 1000 / best
    }
    const dir = mkdtempSync(path.join(tmpdir(), 'llorch-bench-download-'))
    try {
      const curl = await timed(async () => {
        const result = await execa('curl', ['-sS', '-o', path.join(dir, 'curl.bin'), ready.url], { reject: false })
        if (result.exitCode !== 0) throw new Error(`curl failed: ${result.stderr}`)
      })
      const pool = PoolConfig.parse({ id: 'bench', engine: 'command', command: ['x', '{model}'], model: { url: ready.url, sha256: ready.sha256 } })
      const agent = await timed(async () => {
        const cacheDir = mkdtempSync(path.join(dir, 'cache-'))
        await new Provisioner({ cacheDir, hfEndpoint: 'https://huggingface.co', hfToken: null, maxCacheBytes: null, pools: [] }).provision(pool)
        rmSync(cacheDir, { recursive: true, force: true })
      })
      process.stdout.write(
        `${values.mb} MB, best of ${rounds}: curl ${curl.toFixed(0)} MB/s, agent ${agent.toFixed(0)} MB/s (sha256 included), agent/curl ${(agent / curl).toFixed(2)}\n`,
      )
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  } finally {
    server.kill()
  }
}
