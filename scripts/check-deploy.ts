/**
 * `npm run check:deploy [-- --secrets-file FILE] [--config FILE] [--outdir DIR]`: bundles the
 * Worker exactly as `wrangler deploy` would (a dry run, nothing uploaded) and fails when the
 * production config or bundle holds something of a local machine or a secret: a var pointing at
 * 127.0.0.1/localhost, a secret declared as a plain var, or the value of a secret from the
 * secrets file, `.dev.vars` or `npm start`'s `.llorch/secrets.json`. It also fails on a secrets
 * file that would deploy a broken Worker (`deploy-secrets.ts`); `--allow-local-registry` takes a
 * plain-http registry on this machine, for an offline stand-in of Turso.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { parseArgs, parseEnv } from 'node:util'
import { execa } from 'execa'
import { unstable_readConfig } from 'wrangler'
import { z } from 'zod'
import { secretsFileProblems } from './deploy-secrets.ts'
import { PROJECT_ROOT } from './local/project-root.ts'

/** What a deployment provides with `wrangler secret put`, never in wrangler.toml. */
const SECRET_NAMES = ['LIBSQL_URL', 'LIBSQL_AUTH_TOKEN', 'ADMIN_TOKEN'] as const
/** A URL or address of this machine: fine locally, a broken or leaking production Worker. */
const LOCAL_ADDRESS = /127\.0\.0\.1|0\.0\.0\.0|\[::1\]|(?:https?|wss?|libsql):\/\/localhost(?::\d+|\/|$)/
/** Credentials the control plane issues (node tokens, API keys). */
const CREDENTIAL = /ll[nk]\.(?:node|key)_[A-Za-z0-9_-]{12}\.[A-Za-z0-9_-]{43}/
/** Shorter values (a port, "true") say nothing about a leak and would match by chance. */
const MIN_SECRET_LENGTH = 8

const { values } = parseArgs({
  options: {
    config: { type: 'string', default: path.join(PROJECT_ROOT, 'wrangler.toml') },
    'secrets-file': { type: 'string' },
    outdir: { type: 'string' },
    'allow-local-registry': { type: 'boolean', default: false },
  },
})

/** name → value of every secret this machine knows, and where it came from. */
function knownSecrets(): { name: string; value: string; source: string }[] {
  const found: { name: string; value: string; source: string }[] = []
  const envFiles = [values['secrets-file'], path.join(PROJECT_ROOT, '.dev.vars')].filter((f): f is string => f !== undefined && existsSync(f))
  for (const file of envFiles) {
    for (const [name, value] of Object.entries(parseEnv(readFileSync(file, 'utf8')))) if (value) found.push({ name, value, source: file })
  }
  const local = path.join(PROJECT_ROOT, '.llorch/secrets.json')
  if (existsSync(local)) {
    const parsed = z.record(z.string(), z.unknown()).safeParse(JSON.parse(readFileSync(local, 'utf8')))
    for (const [name, value] of Object.entries(parsed.success ? parsed.data : {})) if (typeof value === 'string') found.push({ name, value, source: local })
  }
  return found.filter((s) => s.value.length >= MIN_SECRET_LENGTH)
}

function around(text: string, index: number): string {
  return JSON.stringify(text.slice(Math.max(0, index - 30), index + 50))
}

const problems: string[] = []
const secretsFile = values['secrets-file']
if (secretsFile !== undefined) {
  if (!existsSync(secretsFile)) problems.push(`${secretsFile}: no such file`)
  else problems.push(...secretsFileProblems(secretsFile, parseEnv(readFileSync(secretsFile, 'utf8')), { allowLocalRegistry: values['allow-local-registry'] }))
}
const config = unstable_readConfig({ config: values.config })
for (const [name, value] of Object.entries(config.vars)) {
  if ((SECRET_NAMES as readonly string[]).includes(name))
    problems.push(`${values.config}: vars.${name} is a plain var; it is a secret: remove it and run wrangler secret put ${name}`)
  if (typeof value === 'string' && LOCAL_ADDRESS.test(value)) problems.push(`${values.config}: vars.${name} = ${JSON.stringify(value)} points at this machine`)
}

const outdir = values.outdir ? path.resolve(values.outdir) : mkdtempSync(path.join(tmpdir(), 'llorch-deploy-check-'))
const wrangler = path.join(PROJECT_ROOT, 'node_modules/wrangler/bin/wrangler.js')
const dryRun = await execa(
  process.execPath,
  [
    wrangler,
    'deploy',
    '--dry-run',
    '--config',
    values.config,
    '--outdir',
    outdir,
    ...(secretsFile !== undefined && existsSync(secretsFile) ? ['--secrets-file', secretsFile] : []),
  ],
  {
    cwd: PROJECT_ROOT,
    env: { WRANGLER_SEND_METRICS: 'false', CI: '1' },
    reject: false,
    all: true,
  },
)
if (dryRun.exitCode !== 0) {
  process.stderr.write(`${dryRun.all}\ncheck:deploy: wrangler deploy --dry-run failed\n`)
  process.exit(1)
}
const bundleFile = path.join(outdir, 'index.js')
const bundle = readFileSync(bundleFile, 'utf8')
// Dependencies' doc comments show example URLs (Hono's `http://localhost:8787/about/me`).
const code = bundle
  .split('\n')
  .filter((line) => !/^\s*(\*|\/\/|\/\*)/.test(line))
  .join('\n')
const local = LOCAL_ADDRESS.exec(code)
if (local) problems.push(`${bundleFile}: holds a local address: ${around(code, local.index)}`)
const credential = CREDENTIAL.exec(bundle)
if (credential) problems.push(`${bundleFile}: holds a node token or API key: ${credential[0].slice(0, 12)}…`)
for (const secret of knownSecrets()) {
  for (const [what, text] of [
    [bundleFile, bundle],
    ['the output of wrangler deploy --dry-run', dryRun.all],
  ] as const) {
    if (text.includes(secret.value)) problems.push(`${what}: holds the value of ${secret.name} from ${secret.source}`)
  }
}
if (!values.outdir) rmSync(outdir, { recursive: true, force: true })

if (problems.length > 0) {
  process.stderr.write(
    `${problems.map((p) => `check:deploy: ${p}`).join('\n')}\ncheck:deploy: ${problems.length} problem${problems.length === 1 ? '' : 's'}; fix them before npm run deploy\n`,
  )
  process.exit(1)
}
const kib = (Buffer.byteLength(bundle) / 1024).toFixed(0)
process.stdout.write(
  `check:deploy: ok: ${config.name} bundled (${kib} KiB), no local address or secret in it; vars: ${Object.keys(config.vars).join(', ') || 'none'}; secrets it needs: ${SECRET_NAMES.join(', ')}\n`,
)
