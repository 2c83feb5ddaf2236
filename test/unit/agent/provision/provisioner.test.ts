import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { pipeline } from 'node:stream/promises'
import { create } from 'tar'
import { afterEach, describe, expect, it } from 'vitest'
import yazl from 'yazl'
import { PoolConfig } from '../../../../node-agent/config/schema.ts'
import type { PoolConfigInput } from '../../../../node-agent/config/schema.ts'
import { listRecords } from '../../../../node-agent/provision/cache-layout.ts'
import { ProvisionError } from '../../../../node-agent/provision/provision-error.ts'
import { Provisioner } from '../../../../node-agent/provision/provisioner.ts'
import type { DownloadProgress } from '../../../../protocol/index.ts'
import { modelBytes, sha256Of, startHubServer } from '../../../fixtures/hub-server.ts'
import type { HubServer } from '../../../fixtures/hub-server.ts'

const COMMIT = 'a'.repeat(40)
const NEXT_COMMIT = 'b'.repeat(40)
const MODEL = modelBytes(300_000, 7)
const cleanups: Array<() => unknown> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

async function hub(): Promise<HubServer> {
  const server = await startHubServer({
    repos: {
      'org/tiny': { commit: COMMIT, refs: { main: COMMIT }, files: { 'tiny.gguf': MODEL, 'config.json': Buffer.from('{"model_type":"tiny"}') } },
      'org/split': {
        commit: COMMIT,
        refs: { main: COMMIT },
        files: { 'm-00001-of-00002.gguf': modelBytes(5_000, 1), 'm-00002-of-00002.gguf': modelBytes(6_000, 2) },
      },
    },
    files: { 'raw.bin': modelBytes(4_000, 3) },
  })
  cleanups.push(() => server.close())
  return server
}

function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'llorch-cache-'))
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

function pool(model: PoolConfigInput extends infer P ? (P extends { engine: 'command'; model?: infer M } ? M : never) : never, id = 'p'): PoolConfig {
  return PoolConfig.parse({ id, engine: 'command', command: ['engine', '{model}'], model })
}

function provisioner(server: HubServer, cacheDir: string, extra: Partial<ConstructorParameters<typeof Provisioner>[0]> = {}): Provisioner {
  return new Provisioner({ cacheDir, hfEndpoint: server.url, hfToken: null, maxCacheBytes: null, pools: [], retryDelayMs: 10, ...extra })
}

const contentGets = (server: HubServer) => server.requests.filter((r) => r.method === 'GET' && r.path.startsWith('/content/'))

describe('provisioner', () => {
  it('fetches a Hub file into the hub cache layout and serves it from the recorded commit afterwards', async () => {
    const server = await hub()
    const cacheDir = tempDir()
    const seen: DownloadProgress[] = []
    const paths = await provisioner(server, cacheDir).provision(pool({ hf: 'org/tiny', file: 'tiny.gguf' }), { onProgress: (p) => seen.push(p) })
    const sha = sha256Of(MODEL)
    expect(paths.model).toBe(path.join(cacheDir, 'models--org--tiny', 'snapshots', COMMIT, 'tiny.gguf'))
    expect(readlinkSync(paths.model ?? '')).toBe(`../../blobs/${sha}`)
    expect(readFileSync(paths.model ?? '').equals(MODEL)).toBe(true)
    expect(readFileSync(path.join(cacheDir, 'models--org--tiny', 'refs', 'main'), 'utf8')).toBe(COMMIT)
    expect(paths.env).toEqual({ HF_HUB_CACHE: cacheDir, HF_HUB_OFFLINE: '1' })
    expect(seen.at(-1)).toMatchObject({ file: 'tiny.gguf', bytes_done: MODEL.length, bytes_total: MODEL.length })
    expect(listRecords(new Provisioner({ cacheDir, hfEndpoint: server.url, hfToken: null, maxCacheBytes: null, pools: [] }).layout)).toMatchObject([
      { sha256: sha, size: MODEL.length, source: 'org/tiny', files: ['tiny.gguf'], commit: COMMIT },
    ])

    // main moves on; the box keeps serving the commit it has until a refresh.
    server.repos.set('org/tiny', { commit: NEXT_COMMIT, refs: { main: NEXT_COMMIT }, files: { 'tiny.gguf': modelBytes(2_000, 9) } })
    const before = server.requests.length
    expect((await provisioner(server, cacheDir).provision(pool({ hf: 'org/tiny', file: 'tiny.gguf' }))).model).toBe(paths.model)
    expect(server.requests.length).toBe(before)
    const refreshed = await provisioner(server, cacheDir).provision(pool({ hf: 'org/tiny', file: 'tiny.gguf' }), { refresh: true })
    expect(refreshed.model).toBe(path.join(cacheDir, 'models--org--tiny', 'snapshots', NEXT_COMMIT, 'tiny.gguf'))
  })

  it('resumes a cut transfer with Range from where it stopped and checks the whole file', async () => {
    const server = await hub()
    Object.assign(server.knobs, { cuts: 2, cutAfterBytes: 100_000 })
    const paths = await provisioner(server, tempDir()).provision(pool({ hf: 'org/tiny', file: 'tiny.gguf' }))
    expect(readFileSync(paths.model ?? '').equals(MODEL)).toBe(true)
    const [first, ...resumed] = contentGets(server).map((r) => r.range)
    expect(first).toBeNull()
    // Each try starts where the bytes that reached the disk end: at the cut, or a little before it.
    const offsets = resumed.map((range) => Number(/^bytes=(\d+)-$/.exec(range ?? '')?.[1]))
    expect(offsets).toHaveLength(2)
    expect(offsets[0]).toBeGreaterThan(0)
    expect(offsets[0]).toBeLessThanOrEqual(100_000)
    expect(offsets[1]).toBeGreaterThan(offsets[0] ?? 0)
    expect(offsets[1]).toBeLessThanOrEqual((offsets[0] ?? 0) + 100_000)
  })

  it('starts over when the partial file is longer than the file (416)', async () => {
    const server = await hub()
    const cacheDir = tempDir()
    const blob = path.join(cacheDir, 'models--org--tiny', 'blobs', sha256Of(MODEL))
    mkdirSync(path.dirname(blob), { recursive: true })
    writeFileSync(`${blob}.incomplete`, modelBytes(MODEL.length + 10, 4))
    writeFileSync(`${blob}.incomplete.json`, JSON.stringify({ etag: sha256Of(MODEL) }))
    const paths = await provisioner(server, cacheDir).provision(pool({ hf: 'org/tiny', file: 'tiny.gguf' }))
    expect(readFileSync(paths.model ?? '').equals(MODEL)).toBe(true)
    expect(contentGets(server).map((r) => r.range)).toEqual([`bytes=${MODEL.length + 10}-`, null])
  })

  it('starts over when the partial file is of another version of the file (its ETag changed)', async () => {
    const server = await hub()
    const cacheDir = tempDir()
    const blob = path.join(cacheDir, 'models--org--tiny', 'blobs', sha256Of(MODEL))
    mkdirSync(path.dirname(blob), { recursive: true })
    writeFileSync(`${blob}.incomplete`, modelBytes(50_000, 5))
    writeFileSync(`${blob}.incomplete.json`, JSON.stringify({ etag: 'an-older-version' }))
    const paths = await provisioner(server, cacheDir).provision(pool({ hf: 'org/tiny', file: 'tiny.gguf' }))
    expect(readFileSync(paths.model ?? '').equals(MODEL)).toBe(true)
    expect(contentGets(server).map((r) => r.range)).toEqual([null])
  })

  it('refuses wrong bytes with both hashes and keeps nothing of them', async () => {
    const server = await hub()
    server.knobs.wrongBytes = true
    const cacheDir = tempDir()
    const failure = await provisioner(server, cacheDir)
      .provision(pool({ hf: 'org/tiny', file: 'tiny.gguf' }))
      .catch((error: unknown) => error)
    expect(failure).toBeInstanceOf(ProvisionError)
    expect(failure).toMatchObject({ code: 'checksum_mismatch' })
    const wrong = sha256Of(Buffer.concat([Buffer.from([(MODEL[0] ?? 0) ^ 0xff]), MODEL.subarray(1)]))
    expect(String(failure)).toContain(`expected ${sha256Of(MODEL)}, got ${wrong}`)
    const blobs = path.join(cacheDir, 'models--org--tiny', 'blobs')
    expect(existsSync(path.join(blobs, sha256Of(MODEL)))).toBe(false)
    expect(existsSync(path.join(blobs, `${sha256Of(MODEL)}.incomplete`))).toBe(false)
  })

  it('checks free space before it starts and names the numbers', async () => {
    const server = await hub()
    server.knobs.claimedSize = 4_100_000_000_000_000
    const cacheDir = tempDir()
    await expect(provisioner(server, cacheDir).provision(pool({ hf: 'org/tiny', file: 'tiny.gguf' }))).rejects.toThrow(
      new RegExp(`^needs 4100\\.0 TB in ${cacheDir}, [\\d.]+ [kMGT]?B free$`),
    )
    expect(contentGets(server)).toEqual([])
  })

  it('downloads a blob once for two pools asking at the same time', async () => {
    const server = await hub()
    server.knobs.bytesPerSecond = 2_000_000
    const shared = provisioner(server, tempDir())
    const [a, b] = await Promise.all([
      shared.provision(pool({ hf: 'org/tiny', file: 'tiny.gguf' }, 'a')),
      shared.provision(pool({ hf: 'org/tiny', file: 'tiny.gguf' }, 'b')),
    ])
    expect(a.model).toBe(b.model)
    expect(contentGets(server)).toHaveLength(1)
  })

  it('fetches every part of a split GGUF and points at the first', async () => {
    const server = await hub()
    const paths = await provisioner(server, tempDir()).provision(pool({ hf: 'org/split', file: 'm-00001-of-00002.gguf' }))
    expect(path.basename(paths.model ?? '')).toBe('m-00001-of-00002.gguf')
    expect(readFileSync(path.join(path.dirname(paths.model ?? ''), 'm-00002-of-00002.gguf')).equals(modelBytes(6_000, 2))).toBe(true)
  })

  it('fetches a whole snapshot, small non-LFS files included, for vLLM', async () => {
    const server = await hub()
    const paths = await provisioner(server, tempDir()).provision(PoolConfig.parse({ id: 'v', engine: 'vllm', model: { hf: 'org/tiny' } }))
    expect(readFileSync(path.join(paths.model ?? '', 'config.json'), 'utf8')).toBe('{"model_type":"tiny"}')
    expect(readFileSync(path.join(paths.model ?? '', 'tiny.gguf')).equals(MODEL)).toBe(true)
  })

  it('sends the token to the Hub but not to a content host elsewhere', async () => {
    const server = await hub()
    server.knobs.token = 'hf_secret'
    const refused = await provisioner(server, tempDir())
      .provision(pool({ hf: 'org/tiny', file: 'tiny.gguf' }))
      .catch((error: unknown) => error)
    expect(refused).toMatchObject({ code: 'source_unauthorized' })
    server.knobs.contentOrigin = server.url.replace('127.0.0.1', 'localhost')
    await provisioner(server, tempDir(), { hfToken: 'hf_secret' }).provision(pool({ hf: 'org/tiny', file: 'tiny.gguf' }))
    const content = contentGets(server)
    expect(content.map((r) => [r.host.split(':')[0], r.authorization])).toEqual([['localhost', null]])
    expect(server.requests.filter((r) => r.path.includes('/resolve/')).at(-1)?.authorization).toBe('Bearer hf_secret')
  })

  it('fetches a url source checked against its sha256', async () => {
    const server = await hub()
    const bytes = modelBytes(4_000, 3)
    const paths = await provisioner(server, tempDir()).provision(pool({ url: `${server.url}/files/raw.bin`, sha256: sha256Of(bytes) }))
    expect(path.basename(paths.model ?? '')).toBe('raw.bin')
    expect(readFileSync(paths.model ?? '').equals(bytes)).toBe(true)
    await expect(provisioner(server, tempDir()).provision(pool({ url: `${server.url}/files/raw.bin`, sha256: 'f'.repeat(64) }))).rejects.toThrow(
      `raw.bin: sha256 mismatch, expected ${'f'.repeat(64)}, got ${sha256Of(bytes)}`,
    )
  })

  it('evicts the least recently used blob no pool uses to stay under max_cache_bytes', async () => {
    const server = await hub()
    const cacheDir = tempDir()
    const split = pool({ hf: 'org/split', file: 'm-00001-of-00002.gguf' }, 'split')
    const tiny = pool({ hf: 'org/tiny', file: 'tiny.gguf' }, 'tiny')
    await provisioner(server, cacheDir).provision(split)
    const limited = provisioner(server, cacheDir, { maxCacheBytes: MODEL.length + 1_000, pools: [tiny] })
    await limited.provision(tiny)
    expect(listRecords(limited.layout).map((r) => r.source)).toEqual(['org/tiny'])
    expect(existsSync(path.join(cacheDir, 'models--org--split', 'snapshots', COMMIT, 'm-00001-of-00002.gguf'))).toBe(false)
  })
})

describe('engine archives', () => {
  async function archiveServer(kind: 'tar.gz' | 'zip'): Promise<{ server: HubServer; sha: string }> {
    const dir = tempDir()
    mkdirSync(path.join(dir, 'src', 'build', 'bin'), { recursive: true })
    writeFileSync(path.join(dir, 'src', 'build', 'bin', 'llama-server'), '#!/bin/sh\necho stand-in\n', { mode: 0o755 })
    const file = path.join(dir, `llama.${kind}`)
    if (kind === 'tar.gz') {
      await create({ gzip: true, file, cwd: path.join(dir, 'src') }, ['build'])
    } else {
      const zip = new yazl.ZipFile()
      zip.addFile(path.join(dir, 'src', 'build', 'bin', 'llama-server'), 'build/bin/llama-server', { mode: 0o100755 })
      zip.end()
      await pipeline(zip.outputStream, createWriteStream(file))
    }
    const bytes = readFileSync(file)
    const server = await startHubServer({ files: { [`llama.${kind}`]: bytes } })
    cleanups.push(() => server.close())
    return { server, sha: sha256Of(bytes) }
  }

  for (const kind of ['tar.gz', 'zip'] as const) {
    it(`unpacks a .${kind} release into the cache and runs the program from there`, async () => {
      const { server, sha } = await archiveServer(kind)
      const cacheDir = tempDir()
      const llama = PoolConfig.parse({
        id: 'l',
        engine: 'llamacpp',
        model: '/m.gguf',
        binary: { url: `${server.url}/files/llama.${kind}`, sha256: sha, path: 'build/bin/llama-server' },
      })
      const paths = await provisioner(server, cacheDir).provision(llama)
      expect(paths.binary).toBe(path.join(cacheDir, 'engines', 'unpacked', sha, 'build', 'bin', 'llama-server'))
      expect(readFileSync(paths.binary ?? '', 'utf8')).toContain('stand-in')
      const wrongPath = PoolConfig.parse({ ...llama, binary: { url: `${server.url}/files/llama.${kind}`, sha256: sha, path: 'bin/llama-server' } })
      await expect(provisioner(server, cacheDir).provision(wrongPath)).rejects.toThrow(`llama.${kind} has no executable bin/llama-server (check binary.path)`)
    })
  }
})
