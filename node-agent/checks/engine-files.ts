import { statSync } from 'node:fs'
import path from 'node:path'
import type { AgentConfig, PoolConfig } from '../config/schema.ts'
import { sourcesOf } from '../provision/pool-sources.ts'
import { formatBytes } from '../../protocol/index.ts'
import { findExecutable } from './find-executable.ts'
import { readGgufHeader } from './gguf-header.ts'
import type { Finding } from './finding.ts'

const INSTALL_HINT = {
  llamacpp: 'install llama.cpp (its llama-server)',
  vllm: 'install vLLM (pip install vllm)',
  ollama: 'install Ollama (https://ollama.com/download)',
} as const

/**
 * The program the agent would start for a pool and the field that names it; null for engines it
 * does not start, and for engines it fetches (the source checks look at those).
 */
function programOf(pool: PoolConfig, i: number): { program: string; field: string; fix: string } | null {
  switch (pool.engine) {
    case 'llamacpp':
    case 'vllm':
      if (typeof pool.binary !== 'string') return null
      return { program: pool.binary, field: `pools[${i}].binary`, fix: `${INSTALL_HINT[pool.engine]}, or set pools[${i}].binary to its full path` }
    case 'ollama':
      if (typeof pool.binary !== 'string') return null
      return pool.spawn
        ? { program: pool.binary, field: `pools[${i}].binary`, fix: `${INSTALL_HINT.ollama}, or set pools[${i}].binary to its full path` }
        : null
    case 'command':
      return { program: pool.command[0] ?? '', field: `pools[${i}].command[0]`, fix: `give the full path of the program in pools[${i}].command[0]` }
    case 'openai':
      return null
  }
}

function checkGguf(model: string, field: string, fix: string): Finding {
  const file = path.resolve(model)
  try {
    if (!statSync(file).isFile()) return { verdict: 'fail', check: 'model', field, message: `${file} is not a file`, fix }
    const header = readGgufHeader(file)
    if ('problem' in header) return { verdict: 'fail', check: 'model', field, message: `${file} is not a GGUF model (${header.problem})`, fix }
    return { verdict: 'ok', check: 'model', field, message: `${file} (GGUF v${header.version}, ${header.tensors} tensors, ${formatBytes(header.size)})` }
  } catch (error) {
    const code = error instanceof Error && 'code' in error ? String(error.code) : String(error)
    return { verdict: 'fail', check: 'model', field, message: code === 'ENOENT' ? `${file} does not exist` : `cannot read ${file} (${code})`, fix }
  }
}

const looksLikePath = (model: string) => /^(\/|\.\.?\/|~)/.test(model)

function checkModel(pool: PoolConfig, i: number): Finding | null {
  const field = `pools[${i}].model`
  switch (pool.engine) {
    case 'llamacpp':
      if (typeof pool.model !== 'string') return null
      return checkGguf(pool.model, field, `download the GGUF file to that path, or set ${field} to the one you have`)
    case 'vllm': {
      if (typeof pool.model !== 'string') return null
      if (!looksLikePath(pool.model))
        return { verdict: 'ok', check: 'model', field, message: `${pool.model}: a Hugging Face id, downloaded by vLLM when it first starts` }
      const dir = path.resolve(pool.model)
      let isDir = false
      try {
        isDir = statSync(dir).isDirectory()
      } catch {
        // missing: reported below
      }
      return isDir
        ? { verdict: 'ok', check: 'model', field, message: `${dir} (a model directory)` }
        : { verdict: 'fail', check: 'model', field, message: `${dir} is not a directory`, fix: `set ${field} to the model's directory or to a Hugging Face id` }
    }
    case 'ollama':
      return { verdict: 'skip', check: 'model', field, message: `${pool.model}: an Ollama tag, not a file (ollama list shows what is pulled)` }
    case 'command':
    case 'openai':
      return null
  }
}

/** Each pool's program (found and executable) and model file (there, and GGUF for llama.cpp). */
export function checkEngineFiles(config: AgentConfig, { PATH = process.env.PATH ?? '' }: { PATH?: string } = {}): Finding[] {
  const findings: Finding[] = []
  config.pools.forEach((pool, i) => {
    const spec = programOf(pool, i)
    if (spec === null) {
      // A fetched engine is reported by the source checks.
      if (sourcesOf(pool).binary === null)
        findings.push({
          verdict: 'skip',
          check: 'engine',
          field: `pools[${i}]`,
          message: `pool ${pool.id} uses the ${pool.engine} server at ${pool.host}:${String(pool.port)}, which the agent does not start`,
        })
    } else {
      const found = findExecutable(spec.program, { PATH })
      findings.push(
        found
          ? { verdict: 'ok', check: 'engine', field: spec.field, message: `${found} (pool ${pool.id})` }
          : {
              verdict: 'fail',
              check: 'engine',
              field: spec.field,
              message: spec.program.includes('/') ? `${spec.program} is not an executable file` : `${spec.program} is not on PATH`,
              fix: spec.fix,
            },
      )
    }
    const model = checkModel(pool, i)
    if (model) findings.push(model)
  })
  return findings
}
