import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { ConfigError } from '../../../../node-agent/config/errors.ts'
import { loadConfig, parseAgentConfig } from '../../../../node-agent/config/load.ts'

const dirs: string[] = []
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

function writeConfig(name: string, text: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'llorch-config-'))
  dirs.push(dir)
  const file = path.join(dir, name)
  writeFileSync(file, text)
  return file
}

function problemsOf(input: unknown): string[] {
  try {
    parseAgentConfig(input, { file: 'agent.json' })
  } catch (error) {
    if (error instanceof ConfigError) return error.message.split('\n')
    throw error
  }
  throw new Error('expected a ConfigError')
}

const llama = { id: 'qwen', engine: 'llamacpp', model: '/models/qwen.gguf' }

describe('agent config', () => {
  it('asks for a node token when a control plane is configured', () => {
    expect(problemsOf({ control_plane_url: 'https://llorch.example.com', pools: [llama] })).toEqual([
      'agent.json: node_token: control_plane_url is set, so expected node_token or node_token_file (the token POST /v2/nodes printed), got neither',
    ])
  })

  it('names the file, the field path, what is expected and what was found', () => {
    expect(problemsOf({ pools: [llama, { ...llama, id: 'b', port: '80a' }] })).toEqual([
      'agent.json: pools[1].port: expected an integer 1–65535 or "auto", got "80a" (string)',
    ])
  })

  it('reports every problem at once, across pools and the top level', () => {
    const problems = problemsOf({
      control_plane_url: 'ftp://cp.example.com',
      node_token: 'lln.node_AAAAAAAAAAAA.secret-secret-secret',
      pools: [
        { ...llama, slots: 1.5 },
        { id: 'x', engine: 'tgi' },
        { id: 'y', engine: 'vllm' },
      ],
    })
    expect(problems).toEqual([
      'agent.json: control_plane_url: expected a URL starting with wss://, ws://, https:// or http://, got "ftp://cp.example.com" (string)',
      'agent.json: pools[0].slots: expected an integer, got 1.5 (number)',
      'agent.json: pools[1].engine: expected one of "llamacpp", "vllm", "ollama", "openai", "command", got "tgi" (string)',
      'agent.json: pools[2].model: expected a path, {"hf": "org/repo", "file": "…"} or {"url": "https://…", "sha256": "…"}, got nothing (the field is missing)',
    ])
  })

  it('takes model and engine sources and refuses odd names, plain http and unknown fields, naming the field', () => {
    const sha = 'a'.repeat(64)
    const fetched = parseAgentConfig({
      pools: [{ ...llama, model: { hf: 'org/repo', file: 'm.gguf' }, binary: { url: 'https://example.com/llama.zip', sha256: sha, path: 'bin/llama-server' } }],
    })
    expect(fetched.pools[0]).toMatchObject({ model: { hf: 'org/repo', file: 'm.gguf', revision: 'main' }, binary: { path: 'bin/llama-server' } })
    expect(
      problemsOf({
        pools: [
          { ...llama, id: 'a', model: { hf: '../etc', file: 'm.gguf' } },
          { ...llama, id: 'b', model: { hf: 'org/repo', file: '/etc/passwd' } },
          { ...llama, id: 'c', model: { hf: 'org/repo', file: 'a/../../b.gguf' } },
          { ...llama, id: 'd', model: { url: 'http://example.com/m.gguf', sha256: sha } },
          { ...llama, id: 'e', model: { url: 'https://example.com/m.gguf', sha256: 'ABC' } },
          { ...llama, id: 'f', binary: { url: 'https://example.com/llama.exe', sha256: sha, path: 'llama-server' } },
          { ...llama, id: 'g', model: { hf: 'org/repo', revison: 'main' } },
        ],
      }),
    ).toEqual([
      'agent.json: pools[0].model.hf: expected a Hugging Face repository as "org/repo" (letters, digits, _ . -, no ".."), got "../etc" (string)',
      'agent.json: pools[1].model.file: expected a relative path of letters, digits and _ . + @ = - / (no "..", no leading /), got "/etc/passwd" (string)',
      'agent.json: pools[2].model.file: expected a relative path of letters, digits and _ . + @ = - / (no "..", no leading /), got "a/../../b.gguf" (string)',
      'agent.json: pools[3].model.url: expected an https:// URL (plain http only to 127.0.0.1, ::1 or localhost), got "http://example.com/m.gguf" (string)',
      'agent.json: pools[4].model.sha256: expected a sha256 as 64 lowercase hex digits, got "ABC" (string)',
      'agent.json: pools[5].binary.url: expected a URL ending in .tar.gz, .tgz or .zip, got "https://example.com/llama.exe" (string)',
      'agent.json: pools[6].model.revison: unknown field; did you mean "revision"?',
    ])
  })

  it('suggests the right name for a misspelled or camelCased field', () => {
    expect(problemsOf({ statedir: '/tmp/x', pools: [{ ...llama, startTimeoutMs: 5, restart: { max_crash: 2 } }] })).toEqual([
      'agent.json: statedir: unknown field; did you mean "state_dir"?',
      'agent.json: pools[0].restart.max_crash: unknown field; did you mean "max_crashes"?',
      'agent.json: pools[0].startTimeoutMs: unknown field; did you mean "start_timeout_ms"?',
    ])
  })

  it('finds duplicate pool ids and fixed ports even when another pool is broken', () => {
    const problems = problemsOf({
      pools: [
        { ...llama, port: 8080 },
        { ...llama, port: 8080, model: '/m.gguf' },
        { id: 'broken', engine: 'vllm', model: 'm', slots: 0 },
      ],
    })
    expect(problems).toContain('agent.json: pools[1].id: duplicate pool id "qwen" (also pools[0])')
    expect(problems).toContain('agent.json: pools[1].port: 127.0.0.1:8080 is also used by pools[0]; use "auto" or another port')
    expect(problems).toContain('agent.json: pools[2].slots: expected a number ≥ 1, got 0 (number)')
  })

  it('checks the placeholders of a command pool', () => {
    expect(problemsOf({ pools: [{ id: 'c', engine: 'command', command: ['serve', '--port={prot}', '{model}'] }] })).toEqual([
      'agent.json: pools[0].command[1]: unknown placeholder {prot}; expected one of {port}, {host}, {model}, {slots}, {pool}, {node}, {config_dir}',
      'agent.json: pools[0].model: the command uses {model}, so expected a string, got nothing (the field is missing)',
      'agent.json: pools[0].command: port is "auto" but the command has no {port} placeholder; add one or set a fixed port',
    ])
  })

  it("fills {node} with the Node running the agent and {config_dir} with the config file's folder when loading", () => {
    const file = writeConfig(
      'agent.json',
      JSON.stringify({ pools: [{ id: 'c', engine: 'command', command: ['{node}', '{config_dir}/engine.ts', '--port', '{port}'] }] }),
    )
    const pool = loadConfig(file).pools[0]
    expect(pool?.engine === 'command' && pool.command).toEqual([process.execPath, `${path.dirname(file)}/engine.ts`, '--port', '{port}'])
  })

  it('refuses "auto" for engines the agent does not start', () => {
    expect(problemsOf({ pools: [{ id: 'o', engine: 'openai', port: 'auto' }] })).toEqual([
      'agent.json: pools[0].port: expected an integer 1–65535 ("auto" needs an engine the agent starts), got "auto" (string)',
    ])
    expect(problemsOf({ pools: [{ id: 'o', engine: 'ollama', model: 'qwen2.5', port: 'auto' }] })).toEqual([
      'agent.json: pools[0].port: port "auto" needs spawn: true; give the port of the running Ollama (11434 by default)',
    ])
  })

  it('takes a metrics port from 0 to 65535 and leaves metrics off without one', () => {
    expect(problemsOf({ metrics_port: 70000, pools: [llama] })).toEqual(['agent.json: metrics_port: expected a number ≤ 65535, got 70000 (number)'])
    expect(parseAgentConfig({ metrics_port: 9464, pools: [llama] }, { baseDir: '/etc/llorch' }).metrics_port).toBe(9464)
    expect(parseAgentConfig({ pools: [llama] }, { baseDir: '/etc/llorch' }).metrics_port).toBeUndefined()
  })

  it('refuses a node token given both inline and as a file', () => {
    expect(problemsOf({ node_token: 'x'.repeat(32), node_token_file: '/etc/llorch/token', pools: [llama] })).toEqual([
      'agent.json: node_token_file: give node_token or node_token_file, not both',
    ])
  })

  it('fills in defaults from the schema, per engine kind', () => {
    const config = parseAgentConfig({ pools: [llama, { id: 'o', engine: 'ollama', model: 'qwen2.5:7b' }] }, { baseDir: '/etc/llorch' })
    expect(config).toMatchObject({ state_dir: '/var/lib/llorch-agent', reconnect_max_ms: 30_000, welcome_timeout_ms: 15_000 })
    expect(config.pools[0]).toMatchObject({ host: '127.0.0.1', port: 'auto', slots: 1, preload: 'eager', health_path: '/health', binary: 'llama-server' })
    expect(config.pools[1]).toMatchObject({ port: 11434, spawn: false, keep_alive: -1, health_path: '/api/version' })
  })

  it('gives every pool the process fields, with no grace when the agent does not start the engine', () => {
    const config = parseAgentConfig({ pools: [llama, { id: 'o', engine: 'openai', port: 8000 }] })
    expect(config.pools[0]).toMatchObject({ args: [], env: {}, stop_grace_ms: 10_000, log_tail_lines: 40 })
    expect(config.pools[1]).toMatchObject({ args: [], env: {}, stop_grace_ms: 0, log_tail_lines: 40 })
  })

  it('resolves a relative state dir against the config file', () => {
    const file = writeConfig('agent.json', JSON.stringify({ state_dir: 'state', pools: [llama] }))
    expect(loadConfig(file).state_dir).toBe(path.join(path.dirname(file), 'state'))
  })

  it('reads YAML and reports its syntax errors with a line number', () => {
    const good = writeConfig('agent.yaml', 'pools:\n  - id: qwen\n    engine: llamacpp\n    model: /m.gguf\n')
    expect(loadConfig(good).pools[0]?.id).toBe('qwen')
    const bad = writeConfig('agent.yaml', 'pools:\n  - id: qwen\n   engine: [llamacpp\n')
    expect(() => loadConfig(bad)).toThrow(/agent\.yaml: line 3, column 1: not valid YAML: Sequence item without - indicator\n/)
  })

  it('names the file when it cannot be read or parsed', () => {
    expect(() => loadConfig('/nonexistent/agent.json')).toThrow('/nonexistent/agent.json: cannot read the file (ENOENT)')
    const bad = writeConfig('agent.json', '{ "pools": [ }')
    expect(() => loadConfig(bad)).toThrow(/agent\.json: not valid JSON/)
  })
})
