import { readFileSync } from 'node:fs'
import path from 'node:path'
import { parseDocument } from 'yaml'
import { z } from 'zod'
import { ConfigError, describeIssue } from './errors.ts'
import { PLACEHOLDERS, fillPlaceholders } from './placeholders.ts'
import type { ConfigProblem } from './errors.ts'
import { AgentConfig, CommandPool, LlamaCppPool, OllamaPool, OpenAIPool, PoolConfig, Restart, VllmPool } from './schema.ts'
import { EngineArchive, HfSource, UrlSource } from './sources.ts'

/** The top level alone: pools are checked one by one so one bad pool hides no other problem. */
const AgentConfigTop = AgentConfig.extend({ pools: z.array(z.unknown()).min(1).max(256) })

const POOL_KEYS = [...new Set([LlamaCppPool, VllmPool, OllamaPool, OpenAIPool, CommandPool].flatMap((s) => Object.keys(s.shape)))]

function knownKeys(at: readonly PropertyKey[]): readonly string[] {
  if (at.length === 0) return Object.keys(AgentConfigTop.shape)
  if (at.length === 2 && at[0] === 'pools') return POOL_KEYS
  if (at.length === 3 && at[2] === 'restart') return Object.keys(Restart.unwrap().shape)
  if (at.length === 3 && at[2] === 'model') return [...Object.keys(HfSource.shape), ...Object.keys(UrlSource.shape)]
  if (at.length === 3 && at[2] === 'binary') return Object.keys(EngineArchive.shape)
  return []
}

const spawnsProcess = (pool: PoolConfig) => pool.engine !== 'openai' && (pool.engine !== 'ollama' || pool.spawn)

/** Problems no single field shows: duplicates, placeholders, a token given twice. */
function crossCheck(input: unknown, pools: ReadonlyMap<number, PoolConfig>): ConfigProblem[] {
  const problems: ConfigProblem[] = []
  const top = Object(input)
  if (Reflect.get(top, 'node_token') !== undefined && Reflect.get(top, 'node_token_file') !== undefined) {
    problems.push({ path: 'node_token_file', message: 'give node_token or node_token_file, not both' })
  }
  if (
    Reflect.get(top, 'control_plane_url') !== undefined &&
    Reflect.get(top, 'node_token') === undefined &&
    Reflect.get(top, 'node_token_file') === undefined
  ) {
    problems.push({
      path: 'node_token',
      message: 'control_plane_url is set, so expected node_token or node_token_file (the token POST /v2/nodes printed), got neither',
    })
  }
  const ids = new Map<string, number>()
  const ports = new Map<string, number>()
  for (const [i, pool] of pools) {
    const first = ids.get(pool.id)
    if (first !== undefined) problems.push({ path: `pools[${i}].id`, message: `duplicate pool id "${pool.id}" (also pools[${first}])` })
    else ids.set(pool.id, i)
    if (spawnsProcess(pool) && pool.port !== 'auto') {
      const key = `${pool.host}:${pool.port}`
      const other = ports.get(key)
      if (other !== undefined) problems.push({ path: `pools[${i}].port`, message: `${key} is also used by pools[${other}]; use "auto" or another port` })
      else ports.set(key, i)
    }
    if (pool.engine === 'ollama' && !pool.spawn && pool.port === 'auto') {
      problems.push({ path: `pools[${i}].port`, message: 'port "auto" needs spawn: true; give the port of the running Ollama (11434 by default)' })
    }
    if (pool.engine === 'command') {
      const used = new Set<string>()
      pool.command.forEach((arg, j) => {
        for (const match of arg.matchAll(/\{([a-z_]+)\}/g)) {
          const name = match[1] ?? ''
          used.add(name)
          if (!(PLACEHOLDERS as readonly string[]).includes(name)) {
            const known = PLACEHOLDERS.map((p) => `{${p}}`).join(', ')
            problems.push({ path: `pools[${i}].command[${j}]`, message: `unknown placeholder {${name}}; expected one of ${known}` })
          }
        }
      })
      if (used.has('model') && pool.model === undefined) {
        problems.push({ path: `pools[${i}].model`, message: 'the command uses {model}, so expected a string, got nothing (the field is missing)' })
      }
      if (pool.port === 'auto' && !used.has('port')) {
        problems.push({ path: `pools[${i}].command`, message: 'port is "auto" but the command has no {port} placeholder; add one or set a fixed port' })
      }
    }
  }
  return problems
}

/**
 * Validates a parsed config file as a whole and returns it with defaults applied and relative
 * paths (`state_dir`, `node_token_file`, `model_cache_dir`, `hf_token_file`) resolved against `baseDir`. Throws a `ConfigError`
 * listing every problem.
 */
export function parseAgentConfig(input: unknown, { file = 'config', baseDir = process.cwd() }: { file?: string; baseDir?: string } = {}): AgentConfig {
  const problems: ConfigProblem[] = []
  const describe = (issues: readonly z.core.$ZodIssue[], prefix: readonly PropertyKey[] = []) => {
    for (const issue of issues) problems.push(...describeIssue(issue, { input, knownKeys, prefix }))
  }
  const top = AgentConfigTop.safeParse(input)
  if (!top.success) describe(top.error.issues)
  const poolsValue: unknown = top.success ? top.data.pools : Reflect.get(Object(input), 'pools')
  const rawPools: unknown[] = Array.isArray(poolsValue) ? poolsValue : []
  const pools = new Map<number, PoolConfig>()
  rawPools.forEach((raw, i) => {
    const parsed = PoolConfig.safeParse(raw)
    if (parsed.success) pools.set(i, parsed.data)
    else describe(parsed.error.issues, ['pools', i])
  })
  problems.push(...crossCheck(input, pools))
  if (!top.success || problems.length > 0) throw new ConfigError(file, problems)
  const config = top.data
  // Known when the file is read, unlike {port}: the Node running this agent and the file's folder.
  const atLoad = { node: process.execPath, config_dir: baseDir }
  return {
    ...config,
    state_dir: path.resolve(baseDir, config.state_dir),
    node_token_file: config.node_token_file === undefined ? undefined : path.resolve(baseDir, config.node_token_file),
    model_cache_dir: config.model_cache_dir === undefined ? undefined : path.resolve(baseDir, config.model_cache_dir),
    hf_token_file: config.hf_token_file === undefined ? undefined : path.resolve(baseDir, config.hf_token_file),
    pools: rawPools
      .map((_, i) => pools.get(i))
      .filter((p) => p !== undefined)
      .map((pool) => (pool.engine === 'command' ? { ...pool, command: pool.command.map((arg) => fillPlaceholders(arg, atLoad)) } : pool)),
  }
}

function readStructured(file: string, text: string): unknown {
  if (/\.ya?ml$/i.test(file)) {
    const doc = parseDocument(text)
    if (doc.errors.length > 0) {
      throw new ConfigError(
        file,
        doc.errors.map((error) => {
          const at = error.linePos?.[0]
          const where = at ? `line ${at.line}, column ${at.col}: ` : ''
          const what = (error.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '')
          return { path: null, message: `${where}not valid YAML: ${what}` }
        }),
      )
    }
    return doc.toJS()
  }
  try {
    return JSON.parse(text)
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error)
    throw new ConfigError(file, [{ path: null, message: `not valid JSON: ${detail}` }])
  }
}

/** Reads a JSON (`.json`) or YAML (`.yaml`, `.yml`) config file and validates all of it. */
export function loadConfig(file: string): AgentConfig {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (error) {
    const code = error instanceof Error && 'code' in error ? String(error.code) : 'unknown error'
    throw new ConfigError(file, [{ path: null, message: `cannot read the file (${code})` }], { cause: error })
  }
  return parseAgentConfig(readStructured(file, text), { file, baseDir: path.dirname(path.resolve(file)) })
}
