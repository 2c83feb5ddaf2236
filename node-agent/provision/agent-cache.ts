import { readFileSync } from 'node:fs'
import path from 'node:path'
import type { AgentConfig } from '../config/schema.ts'
import { ConfigError } from '../config/errors.ts'
import type { Log } from '../log/log.ts'
import { DEFAULT_HF_ENDPOINT } from './hub-client.ts'
import { Provisioner } from './provisioner.ts'

/** `model_cache_dir`, or `<state_dir>/models`. */
export function cacheDirOf(config: AgentConfig): string {
  return config.model_cache_dir ?? path.join(config.state_dir, 'models')
}

/** `HF_ENDPOINT` as `huggingface_hub` reads it, without a trailing slash. */
export function hfEndpointOf(env: NodeJS.ProcessEnv = process.env): string {
  return (env.HF_ENDPOINT || DEFAULT_HF_ENDPOINT).replace(/\/+$/, '')
}

/** The token in `hf_token_file`, or null when there is none; a file that cannot be read is a config error. */
export function readHfToken(config: AgentConfig, configFile = 'config'): string | null {
  if (config.hf_token_file === undefined) return null
  try {
    return readFileSync(config.hf_token_file, 'utf8').trim() || null
  } catch (error) {
    const code = error instanceof Error && 'code' in error ? String(error.code) : String(error)
    throw new ConfigError(configFile, [{ path: 'hf_token_file', message: `cannot read ${config.hf_token_file} (${code})` }], { cause: error })
  }
}

/** The agent's cache and what fetches into it, from the config and the environment. */
export function provisionerFor(
  config: AgentConfig,
  { log, env = process.env, configFile }: { log?: Log; env?: NodeJS.ProcessEnv; configFile?: string } = {},
): Provisioner {
  return new Provisioner({
    cacheDir: cacheDirOf(config),
    hfEndpoint: hfEndpointOf(env),
    hfToken: readHfToken(config, configFile),
    maxCacheBytes: config.max_cache_bytes ?? null,
    pools: config.pools,
    log,
  })
}
