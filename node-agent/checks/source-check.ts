import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import path from 'node:path'
import type { AgentConfig, PoolConfig } from '../config/schema.ts'
import type { EngineArchive, ModelSource } from '../config/sources.ts'
import { cacheDirOf, hfEndpointOf, readHfToken } from '../provision/agent-cache.ts'
import { formatBytes } from '../../protocol/index.ts'
import { CacheLayout, readRecord } from '../provision/cache-layout.ts'
import { blobsOfPool } from '../provision/cache-usage.ts'
import { sourcesOf } from '../provision/pool-sources.ts'
import { Provisioner } from '../provision/provisioner.ts'
import type { Finding } from './finding.ts'

/** `org/repo@main: file`, `org/repo@main (snapshot)` or the URL. */
function describeSource(source: ModelSource | EngineArchive): string {
  if ('url' in source) return source.url
  return source.file === undefined ? `${source.hf}@${source.revision} (snapshot)` : `${source.hf}@${source.revision}: ${source.file}`
}

function sourceField(pool: PoolConfig, i: number): string {
  return sourcesOf(pool).model ? `pools[${i}].model` : `pools[${i}].binary`
}

async function sha256OfFile(file: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(file)) hash.update(chunk)
  return hash.digest('hex')
}

/**
 * Offline, for `validate`: each pool's fetched files that are in the cache, checked against the
 * sha256 recorded when they were fetched; sources not fetched yet are said to be so.
 */
export async function checkCachedSources(config: AgentConfig): Promise<Finding[]> {
  const layout = new CacheLayout(cacheDirOf(config))
  const findings: Finding[] = []
  for (const [i, pool] of config.pools.entries()) {
    const { model, binary } = sourcesOf(pool)
    const source = model ?? binary
    if (source === null) continue
    const field = sourceField(pool, i)
    const blobs = blobsOfPool(layout, pool)
    if (blobs.length === 0) {
      findings.push({
        verdict: 'skip',
        check: 'source',
        field,
        message: `${describeSource(source)} is not in the cache yet; the agent fetches it when the pool starts (llorch-agent pull fetches it now)`,
      })
      continue
    }
    let bad: Finding | null = null
    for (const blob of blobs) {
      const record = readRecord(layout, blob)
      const actual = await sha256OfFile(blob).catch(() => null)
      if (record !== null && actual !== record.sha256) {
        const seen = actual === null ? 'cannot be read' : `has sha256 ${actual}`
        bad = {
          verdict: 'fail',
          check: 'source',
          field,
          message: `${path.relative(layout.root, blob)} in ${layout.root} ${seen}, but ${record.sha256} was fetched`,
          fix: `delete it and run llorch-agent pull ${pool.id}`,
        }
        break
      }
    }
    findings.push(
      bad ?? {
        verdict: 'ok',
        check: 'source',
        field,
        message: `${describeSource(source)}: ${blobs.length} file${blobs.length === 1 ? '' : 's'} in the cache, sha256 verified`,
      },
    )
  }
  return findings
}

/** Over the network, for `doctor`: each source answers, how much it would fetch, and whether that fits. */
export async function checkSourcesReachable(
  config: AgentConfig,
  { configFile = 'config', env = process.env }: { configFile?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<Finding[]> {
  const pools = config.pools.filter((p) => sourcesOf(p).model !== null || sourcesOf(p).binary !== null)
  if (pools.length === 0) return []
  let token: string | null = null
  try {
    token = readHfToken(config, configFile)
  } catch (error) {
    return [
      {
        verdict: 'fail',
        check: 'source',
        field: 'hf_token_file',
        message: error instanceof Error ? error.message : String(error),
        fix: 'make the token file readable by the agent',
      },
    ]
  }
  const provisioner = new Provisioner({
    cacheDir: cacheDirOf(config),
    hfEndpoint: hfEndpointOf(env),
    hfToken: token,
    maxCacheBytes: config.max_cache_bytes ?? null,
    pools: config.pools,
  })
  const findings: Finding[] = []
  for (const pool of pools) {
    const i = config.pools.indexOf(pool)
    const field = sourceField(pool, i)
    const source = sourcesOf(pool).model ?? sourcesOf(pool).binary
    const what = source ? describeSource(source) : pool.id
    try {
      const { files, needed, free } = await provisioner.survey(pool)
      const where = provisioner.layout.root
      if (files.length === 0) findings.push({ verdict: 'ok', check: 'source', field, message: `${what}: reachable, everything is in the cache` })
      else if (needed > free)
        findings.push({
          verdict: 'fail',
          check: 'source',
          field,
          message: `${what}: needs ${formatBytes(needed)} in ${where}, ${formatBytes(free)} free`,
          fix: `free space in ${where}, or set model_cache_dir to a larger disk`,
        })
      else
        findings.push({
          verdict: 'ok',
          check: 'source',
          field,
          message: `${what}: reachable, ${files.length} file${files.length === 1 ? '' : 's'} to fetch, ${formatBytes(needed)} (${formatBytes(free)} free in ${where})`,
        })
    } catch (error) {
      findings.push({
        verdict: 'fail',
        check: 'source',
        field,
        message: `${what}: ${error instanceof Error ? error.message : String(error)}`,
        fix: 'check the source fields, HF_ENDPOINT, hf_token_file and the network',
      })
    }
  }
  return findings
}
