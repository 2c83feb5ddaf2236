import { execa } from 'execa'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { get } from 'node:https'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { wranglerManifest } from '../../../serve/bundle-for-serve.ts'
import { manifestFromWranglerConfig } from '../../../serve/worker-manifest.ts'
import { workerdConfig } from '../../../serve/workerd-config.ts'
import { resolvePort } from '../../../node-agent/process/port.ts'
import { REPO_ROOT, waitFor } from '../../support/processes.ts'

const WORKERD = path.join(REPO_ROOT, 'node_modules/workerd/bin/workerd')

/** GET over HTTPS accepting the test's self-signed certificate. */
function httpsBody(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    get(url, { rejectUnauthorized: false }, (response) => {
      let body = ''
      response.setEncoding('utf8')
      response.on('data', (chunk: string) => (body += chunk))
      response.on('end', () => resolve(body))
    }).once('error', reject)
  })
}

describe('the workerd config llorch serve writes', () => {
  let dir: string | undefined
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true })
    dir = undefined
  })

  it('carries what wrangler.toml declares: compatibility, vars, every Durable Object class as SQLite on disk', () => {
    const manifest = wranglerManifest()
    expect(manifest).toMatchObject({
      name: 'llorch',
      compatibilityDate: expect.stringMatching(/^\d{4}-\d{2}-\d{2}$/),
      vars: { HEARTBEAT_INTERVAL_MS: '10000' },
    })
    expect(manifest.durableObjects.map((d) => [d.binding, d.className, d.sql])).toEqual([
      ['POOLS', 'PoolObject', true],
      ['NODES', 'NodeObject', true],
      ['API_KEYS', 'ApiKeyObject', true],
      ['TASKS', 'TaskObject', true],
      ['FILES', 'FileObject', true],
      ['BATCHES', 'BatchObject', true],
      ['LISTINGS', 'ListingObject', true],
    ])
    const config = workerdConfig({
      manifest,
      configFile: '/state/run/workerd.capnp',
      bundleFile: '/opt/llorch/lib/worker/index.js',
      objectsDir: '/state/objects',
      host: '0.0.0.0',
      port: 8787,
      libsqlUrl: 'http://127.0.0.1:4000',
    })
    expect(config).toContain('esModule = embed "../../opt/llorch/lib/worker/index.js"')
    expect(config).toContain(`compatibilityDate = "${manifest.compatibilityDate}"`)
    expect(config).toContain('(name = "ADMIN_TOKEN", fromEnvironment = "ADMIN_TOKEN")')
    expect(config).toContain('(className = "PoolObject", uniqueKey = "llorch-PoolObject", enableSql = true)')
    expect(config).toContain('durableObjectStorage = (localDisk = "objects")')
    expect(config).toContain('address = "0.0.0.0:8787", http = ()')
  })

  it('is a config workerd serves HTTPS with, from a certificate and key, plus plain HTTP on loopback', async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'llorch-workerd-config-'))
    const bundleFile = path.join(dir, 'index.js')
    writeFileSync(bundleFile, 'export default { fetch(request, env) { return new Response(`served ${env.HEARTBEAT_INTERVAL_MS}`) } }\n')
    const [certFile, keyFile] = [path.join(dir, 'cert.pem'), path.join(dir, 'key.pem')]
    await execa('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-subj',
      '/CN=localhost',
      '-days',
      '1',
      '-keyout',
      keyFile,
      '-out',
      certFile,
    ])
    const configFile = path.join(dir, 'workerd.capnp')
    const port = await resolvePort({ port: 'auto', host: '127.0.0.1' })
    const loopbackPort = await resolvePort({ port: 'auto', host: '127.0.0.1' })
    const manifest = { ...wranglerManifest(), durableObjects: [] }
    writeFileSync(
      configFile,
      workerdConfig({
        manifest,
        configFile,
        bundleFile,
        objectsDir: dir,
        host: '127.0.0.1',
        port,
        tls: { certFile, keyFile, loopbackPort },
        libsqlUrl: 'http://127.0.0.1:1',
      }),
    )
    const workerd = execa(WORKERD, ['serve', configFile, 'config'], { reject: false, env: { ADMIN_TOKEN: 'x', LIBSQL_AUTH_TOKEN: 'y' } })
    try {
      const body = await waitFor(() => httpsBody(`https://127.0.0.1:${port}/`).catch(() => null), {
        timeoutMs: 20_000,
        intervalMs: 100,
        message: 'workerd serving HTTPS',
      })
      expect(body).toBe('served 10000')
      // This machine's agent and tools use the plain loopback socket, which the certificate does not name.
      expect(await (await fetch(`http://127.0.0.1:${loopbackPort}/`)).text()).toBe('served 10000')
    } finally {
      workerd.kill('SIGKILL')
      await workerd
    }
  })

  it('names the file and the field for what the home profile cannot run', () => {
    const config = {
      name: 'x',
      compatibility_date: '2026-01-01',
      durable_objects: { bindings: [{ name: 'A', class_name: 'A' }] },
      migrations: [{ tag: 'v1', renamed_classes: [{ from: 'B', to: 'A' }] }],
    }
    expect(() => manifestFromWranglerConfig(config, 'wrangler.toml')).toThrow('wrangler.toml: migrations[0].renamed_classes')
    expect(() => manifestFromWranglerConfig({ ...config, migrations: [] }, 'wrangler.toml')).toThrow(
      'wrangler.toml: durable_objects.bindings: A has no [[migrations]] entry creating it',
    )
  })
})
