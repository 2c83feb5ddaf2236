import { mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { parseDocument } from 'yaml'
import { describePools } from '../config/describe-pools.ts'
import { parseAgentConfig } from '../config/load.ts'
import { probeGpus } from '../gpus/gpus.ts'
import { renderConfigTemplate } from './config-template.ts'
import { detectEngines } from './detect-engines.ts'

export interface InitOptions {
  controlPlaneUrl?: string | undefined
  tokenFile: string
  stateDir: string
  force?: boolean | undefined
}

export type InitResult = { ok: true; summary: string } | { ok: false; message: string }

/**
 * `llorch-agent init`: writes a commented config for the engines on PATH. An existing file is
 * left alone unless `force`; the written text is parsed back, so init never leaves a config
 * that fails on its fields.
 */
export async function initConfig(file: string, options: InitOptions): Promise<InitResult> {
  const engines = detectEngines()
  const probe = await probeGpus()
  const text = renderConfigTemplate({
    controlPlaneUrl: options.controlPlaneUrl ?? null,
    tokenFile: options.tokenFile,
    stateDir: options.stateDir,
    engines,
    gpus: probe.kind === 'gpus' ? probe.gpus : [],
  })
  const config = parseAgentConfig(parseDocument(text).toJS(), { file, baseDir: path.dirname(path.resolve(file)) })
  mkdirSync(path.dirname(path.resolve(file)), { recursive: true })
  try {
    writeFileSync(file, text, { flag: options.force ? 'w' : 'wx', mode: 0o644 })
  } catch (error) {
    if (error instanceof Error && 'code' in error && error.code === 'EEXIST')
      return { ok: false, message: `${file} exists and was left alone; llorch-agent init --force overwrites it` }
    throw error
  }
  const found = engines.length === 0 ? 'no engine found on PATH' : `found ${engines.map((e) => e.engine).join(', ')}`
  return { ok: true, summary: `${file}: written (${found}), ${describePools(config)}` }
}
