import { randomBytes } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { parseEnv } from 'node:util'
import { execa } from 'execa'
import OpenAI from 'openai'
import { describe, expect, it } from 'vitest'
import { CreateApiKeyResponse, CreateNodeResponse, PoolView } from '../../protocol/index.ts'
import { startControlPlane } from '../../scripts/local/control-plane.ts'
import { fakePoolInput, spawnAgentCli } from '../support/agents.ts'
import { startTestLibsqlServer } from '../support/libsql-server-fixture.ts'
import { REPO_ROOT, useProcessCleanup, waitFor } from '../support/processes.ts'

const cleanup = useProcessCleanup()
const script = (name: string) => path.join(REPO_ROOT, 'scripts', name)
/** The secrets file as the Worker's bindings, as `wrangler deploy --secrets-file` sets them. */
const secretsIn = (file: string) =>
  Object.fromEntries(Object.entries(parseEnv(readFileSync(file, 'utf8'))).filter((e): e is [string, string] => e[1] !== undefined))
const run = (name: string, args: string[]) => execa(process.execPath, [script(name), ...args], { cwd: REPO_ROOT, reject: false, all: true })

/** README, "Deploy from zero", with a second local libSQL server (with auth) standing in for Turso. */
describe('deploy from zero', () => {
  it('migrates the stand-in Turso, bundles the production Worker without local addresses or secrets, and serves the first agent', async () => {
    const dir = cleanup.stateDir()
    const authToken = `turso-token-${crypto.randomUUID()}`
    const turso = await startTestLibsqlServer({ authToken })
    cleanup.defer(() => turso.close())
    const secretsFile = path.join(dir, 'production.env')
    const adminToken = randomBytes(32).toString('hex')
    writeFileSync(secretsFile, `LIBSQL_URL=${turso.url}\nLIBSQL_AUTH_TOKEN=${authToken}\nADMIN_TOKEN=${adminToken}\n`, { mode: 0o600 })

    const migrated = await run('db-migrate.ts', ['--secrets-file', secretsFile])
    expect(migrated.all).toMatch(new RegExp(`^db:migrate: applied 0000_init, .* to ${turso.url}; it is up to date$`))

    const outdir = path.join(dir, 'dist')
    // The stand-in is a plain-http server on this machine, which check:deploy refuses unless told.
    const checked = await run('check-deploy.ts', ['--secrets-file', secretsFile, '--outdir', outdir, '--allow-local-registry'])
    expect(checked.all).toMatch(
      /^check:deploy: ok: llorch bundled \(\d+ KiB\), no local address or secret in it; vars: HEARTBEAT_INTERVAL_MS, BATCH_COMPLETION_WINDOW_MS; secrets it needs: LIBSQL_URL, LIBSQL_AUTH_TOKEN, ADMIN_TOKEN$/,
    )
    expect(checked.exitCode).toBe(0)
    const bundle = readFileSync(path.join(outdir, 'index.js'), 'utf8')
    for (const value of [turso.url, authToken, adminToken, '127.0.0.1']) expect(bundle.includes(value), value).toBe(false)

    // The bundle the dry run wrote, with the secrets `wrangler deploy --secrets-file` would set.
    const controlPlane = await startControlPlane({ bundlePath: path.join(outdir, 'index.js'), bindings: secretsIn(secretsFile) })
    cleanup.defer(() => controlPlane.stop())
    const admin = (route: string, body: unknown) =>
      fetch(new URL(route, controlPlane.url), {
        method: 'POST',
        headers: { Authorization: `Bearer ${adminToken}`, 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
      })
    const node = CreateNodeResponse.parse(await (await admin('/v2/nodes', { name: 'gpu-1' })).json())
    const key = CreateApiKeyResponse.parse(await (await admin('/v2/api-keys', { name: 'app', scopes: ['inference'] })).json())

    const tokenFile = path.join(dir, 'node-token')
    writeFileSync(tokenFile, `${node.token}\n`, { mode: 0o600 })
    const config = path.join(dir, 'agent.json')
    writeFileSync(
      config,
      JSON.stringify({ control_plane_url: controlPlane.url.toString(), node_token_file: tokenFile, state_dir: dir, pools: [fakePoolInput('first-model')] }),
    )
    spawnAgentCli(cleanup, config)
    await waitFor(
      async () => {
        const pool = await fetch(new URL('/v2/pools/first-model', controlPlane.url), { headers: { Authorization: `Bearer ${adminToken}` } })
        return pool.status === 200 && PoolView.parse(await pool.json()).state === 'ready'
      },
      { message: 'the first agent’s pool ready' },
    )
    const openai = new OpenAI({ baseURL: new URL('/v1', controlPlane.url).toString(), apiKey: key.key, maxRetries: 0 })
    const reply = await openai.chat.completions.create({ model: 'first-model', max_tokens: 3, messages: [{ role: 'user', content: 'Hello' }] })
    expect(reply.choices[0]?.message.content).toBe('tok0 tok1 tok2')
  })

  it('fails the deploy check for a config that would ship a local registry URL or a secret as a var', async () => {
    const dir = cleanup.stateDir()
    const tracked = readFileSync(path.join(REPO_ROOT, 'wrangler.toml'), 'utf8')
    const config = path.join(dir, 'wrangler.toml')
    writeFileSync(
      config,
      tracked
        .replace('main = "control-plane/index.ts"', `main = "${path.join(REPO_ROOT, 'control-plane/index.ts')}"`)
        .replace('[vars]\n', '[vars]\nLIBSQL_URL = "http://127.0.0.1:8880"\nADMIN_TOKEN = "committed-admin-token-0123456789"\n'),
    )
    const checked = await run('check-deploy.ts', ['--config', config])
    expect(checked.exitCode).toBe(1)
    expect(checked.stderr.split('\n')).toEqual([
      `check:deploy: ${config}: vars.LIBSQL_URL is a plain var; it is a secret: remove it and run wrangler secret put LIBSQL_URL`,
      `check:deploy: ${config}: vars.LIBSQL_URL = "http://127.0.0.1:8880" points at this machine`,
      `check:deploy: ${config}: vars.ADMIN_TOKEN is a plain var; it is a secret: remove it and run wrangler secret put ADMIN_TOKEN`,
      'check:deploy: 3 problems; fix them before npm run deploy',
    ])
  })

  it('fails the deploy check for a secrets file with a local or plain-http registry, no registry token or a short admin token', async () => {
    const dir = cleanup.stateDir()
    const check = async (lines: string[]) => {
      const file = path.join(dir, 'production.env')
      writeFileSync(file, `${lines.join('\n')}\n`, { mode: 0o600 })
      const result = await run('check-deploy.ts', ['--secrets-file', file])
      // The last line counts the problems; the ones before name them.
      return { code: result.exitCode, problems: result.stderr.split('\n').slice(0, -1), stdout: result.stdout, file }
    }
    const local = await check(['LIBSQL_URL=http://localhost:8880', 'ADMIN_TOKEN=short'])
    expect(local.code).toBe(1)
    expect(local.problems).toEqual([
      `check:deploy: ${local.file}: LIBSQL_URL = "http://localhost:8880" points at this machine; a deployed Worker cannot reach it`,
      `check:deploy: ${local.file}: LIBSQL_URL = "http://localhost:8880" is plain http; use libsql:// or https:// so the token is not sent in the clear`,
      `check:deploy: ${local.file}: ADMIN_TOKEN is 5 characters; use at least 48 (openssl rand -hex 32 makes one)`,
    ])
    const remote = await check(['LIBSQL_URL=libsql://llorch-example.turso.io'])
    expect(remote.code).toBe(1)
    expect(remote.problems).toEqual([
      `check:deploy: ${remote.file}: LIBSQL_AUTH_TOKEN is missing; a remote registry needs its token (turso db tokens create)`,
      `check:deploy: ${remote.file}: ADMIN_TOKEN is missing; without it every admin call is refused (openssl rand -hex 32 makes one)`,
    ])
    const good = await check([
      'LIBSQL_URL=libsql://llorch-example.turso.io',
      'LIBSQL_AUTH_TOKEN=turso-token-0123456789',
      `ADMIN_TOKEN=${randomBytes(32).toString('hex')}`,
    ])
    expect(good).toMatchObject({ code: 0, problems: [], stdout: expect.stringMatching(/^check:deploy: ok: /) })
  })
})
