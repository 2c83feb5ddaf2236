import { readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { execa } from 'execa'
import { describe, expect, it } from 'vitest'
import { parseDocument } from 'yaml'
import { AGENT_CLI, FIXTURE_BIN, REPO_ROOT, useProcessCleanup } from '../support/processes.ts'

const cleanup = useProcessCleanup()

/** PATH with the pinned Node (the stand-ins exec `node`) and, when asked, the stand-in engines. */
function pathWith({ engines }: { engines: boolean }): string {
  return [...(engines ? [FIXTURE_BIN] : []), path.dirname(process.execPath), '/usr/bin', '/bin'].join(path.delimiter)
}

const cli = (args: string[], PATH: string) => execa(process.execPath, [AGENT_CLI, ...args], { reject: false, cwd: REPO_ROOT, stdin: 'ignore', env: { PATH } })

describe('llorch-agent init', () => {
  it('writes a commented config with a pool for each engine on PATH, and refuses to overwrite it without --force', async () => {
    const dir = cleanup.stateDir()
    const file = path.join(dir, 'etc/agent.yaml')
    const PATH = pathWith({ engines: true })
    const args = [
      'init',
      '--config',
      file,
      '--control-plane-url',
      'https://llorch.test.workers.dev',
      '--token-file',
      path.join(dir, 'node-token'),
      '--state-dir',
      path.join(dir, 'state'),
    ]
    const result = await cli(args, PATH)
    expect(result.stderr).toBe('')
    expect(result.exitCode).toBe(0)
    expect(result.stdout).toContain(
      `${file}: written (found llamacpp, vllm, ollama), 3 pools: qwen2.5-7b-instruct (llamacpp), llama-3.1-8b-instruct (vllm, on-demand), llama3.2:3b (ollama, on-demand)`,
    )

    const text = readFileSync(file, 'utf8')
    const config = parseDocument(text).toJS()
    expect(config).toMatchObject({
      control_plane_url: 'https://llorch.test.workers.dev',
      node_token_file: path.join(dir, 'node-token'),
      state_dir: path.join(dir, 'state'),
      pools: [
        { engine: 'llamacpp', binary: path.join(FIXTURE_BIN, 'llama-server') },
        { engine: 'vllm', binary: path.join(FIXTURE_BIN, 'vllm'), preload: 'on-demand' },
        { engine: 'ollama', preload: 'on-demand' },
      ],
    })
    expect(text).toContain('# GPUs (nvidia-smi):\n#   0: NVIDIA GeForce RTX 4090, 24564 MiB\n#   1: NVIDIA A100-SXM4-80GB, 81920 MiB')
    expect(text).toContain('# CHANGE: the GGUF file to serve')
    expect((await cli(['validate', '--config', file, '--fields-only'], PATH)).exitCode).toBe(0)

    writeFileSync(file, '# mine\n')
    const again = await cli(args, PATH)
    expect(again.exitCode).toBe(1)
    expect(again.stderr.trim()).toBe(`llorch-agent: ${file} exists and was left alone; llorch-agent init --force overwrites it`)
    expect(readFileSync(file, 'utf8')).toBe('# mine\n')
    expect((await cli([...args, '--force'], PATH)).exitCode).toBe(0)
    expect(readFileSync(file, 'utf8')).toBe(text)
  })

  it('writes a llama.cpp pool and says so when no engine is on PATH', async () => {
    const dir = cleanup.stateDir()
    const file = path.join(dir, 'agent.yaml')
    const PATH = pathWith({ engines: false })
    expect((await cli(['init', '--config', file, '--token-file', path.join(dir, 'node-token')], PATH)).exitCode).toBe(0)
    const text = readFileSync(file, 'utf8')
    expect(text).toContain('# Engines found on PATH: none of llama-server, vllm, ollama.')
    expect(text).toContain('control_plane_url: "https://llorch.example.workers.dev"   # CHANGE: your control plane')
    expect(parseDocument(text).toJS().pools).toEqual([
      { id: 'qwen2.5-7b-instruct', engine: 'llamacpp', binary: 'llama-server', model: '/srv/models/qwen2.5-7b-instruct-q4_k_m.gguf', slots: 4 },
    ])
  })
})

describe('llorch-agent validate', () => {
  it('reports a missing token file, engine program and model file as problems, and exits 1', async () => {
    const dir = cleanup.stateDir()
    const file = path.join(dir, 'agent.yaml')
    writeFileSync(
      file,
      [
        'control_plane_url: https://llorch.test.workers.dev',
        'node_token_file: node-token',
        `state_dir: ${dir}`,
        'pools:',
        '  - id: qwen',
        '    engine: llamacpp',
        '    model: /nonexistent/qwen.gguf',
        '  - id: fake',
        '    engine: command',
        '    command: ["{node}", "--version", "{port}"]',
        '',
      ].join('\n'),
    )
    const result = await cli(['validate', '--config', file], pathWith({ engines: false }))
    expect(result.exitCode).toBe(1)
    expect(result.stdout).toBe('')
    expect(result.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(
        new RegExp(`^${file}: node_token_file: ${dir}/node-token does not exist; fix: write the token that POST /v2/nodes printed into it: `),
      ),
      `${file}: pools[0].binary: llama-server is not on PATH; fix: install llama.cpp (its llama-server), or set pools[0].binary to its full path`,
      `${file}: pools[0].model: /nonexistent/qwen.gguf does not exist; fix: download the GGUF file to that path, or set pools[0].model to the one you have`,
      `${file}: 3 problems`,
    ])

    writeFileSync(path.join(dir, 'node-token'), `lln.node_AAAAAAAAAAAA.${'A'.repeat(43)}\n`, { mode: 0o600 })
    const withToken = await cli(['validate', '--config', file], pathWith({ engines: true }))
    expect(withToken.stderr.trim().split('\n')).toEqual([
      `${file}: pools[0].model: /nonexistent/qwen.gguf does not exist; fix: download the GGUF file to that path, or set pools[0].model to the one you have`,
      `${file}: 1 problem`,
    ])
  })
})
