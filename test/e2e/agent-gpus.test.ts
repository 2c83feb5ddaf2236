import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { PassThrough } from 'node:stream'
import { afterEach, describe, expect, it } from 'vitest'
import { readGpus } from '../../node-agent/gpus/gpus.ts'
import { createLog } from '../../node-agent/log/log.ts'
import { FIXTURE_BIN } from '../support/processes.ts'

const saved = { PATH: process.env.PATH, FAKE_NVIDIA_SMI_EXIT: process.env.FAKE_NVIDIA_SMI_EXIT, FAKE_NVIDIA_SMI_OUTPUT: process.env.FAKE_NVIDIA_SMI_OUTPUT }
const dirs: string[] = []
afterEach(() => {
  for (const [key, value] of Object.entries(saved)) {
    if (value === undefined) delete process.env[key]
    else process.env[key] = value
  }
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

describe('GPU inventory', () => {
  it('reads the GPUs nvidia-smi reports', async () => {
    process.env.PATH = `${FIXTURE_BIN}${path.delimiter}${process.env.PATH ?? ''}`
    expect(await readGpus()).toEqual([
      { index: 0, name: 'NVIDIA GeForce RTX 4090', memory_total_mib: 24564, memory_used_mib: 1024, utilization_percent: 37 },
      { index: 1, name: 'NVIDIA A100-SXM4-80GB', memory_total_mib: 81920, memory_used_mib: 0, utilization_percent: 0 },
    ])
  })

  it('treats a machine without nvidia-smi as a CPU-only node', async () => {
    const empty = mkdtempSync(path.join(tmpdir(), 'llorch-no-gpu-'))
    dirs.push(empty)
    process.env.PATH = empty
    expect(await readGpus()).toEqual([])
  })

  it('logs a failing nvidia-smi and reports no GPUs instead of failing', async () => {
    process.env.PATH = `${FIXTURE_BIN}${path.delimiter}${process.env.PATH ?? ''}`
    process.env.FAKE_NVIDIA_SMI_EXIT = '9'
    const lines = new PassThrough()
    let logged = ''
    lines.on('data', (chunk: Buffer) => (logged += chunk.toString()))
    expect(await readGpus({ log: createLog({ destination: lines }) })).toEqual([])
    expect(JSON.parse(logged)).toMatchObject({
      level: 'warn',
      event: 'gpus.nvidia_smi_failed',
      exit_code: 9,
      err: expect.stringContaining("couldn't communicate with the NVIDIA driver"),
    })
  })
})
