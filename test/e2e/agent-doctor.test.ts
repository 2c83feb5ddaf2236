import { chmodSync, mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { execa } from 'execa'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { resolvePort } from '../../node-agent/process/port.ts'
import { CreateNodeResponse, NodeView } from '../../protocol/index.ts'
import { fakePoolInput, spawnAgentCli } from '../support/agents.ts'
import { startStack } from '../support/local-stack.ts'
import type { Stack } from '../support/local-stack.ts'
import { AGENT_CLI, FIXTURE_BIN, REPO_ROOT, fixturePath, useProcessCleanup, waitFor } from '../support/processes.ts'

const cleanup = useProcessCleanup()
let stack: Stack

beforeAll(async () => {
  stack = await startStack()
})
afterAll(async () => {
  await stack?.stop()
})

function doctor(config: string, env: Record<string, string> = {}) {
  return execa(process.execPath, [AGENT_CLI, 'doctor', '--config', config], {
    reject: false,
    cwd: REPO_ROOT,
    stdin: 'ignore',
    env: { PATH: fixturePath(), ...env },
  })
}

async function createNode(): Promise<{ id: string; token: string }> {
  return CreateNodeResponse.parse(await (await stack.admin('POST', '/v2/nodes', { name: `doctor-${crypto.randomUUID().slice(0, 8)}` })).json())
}

/** The least llama.cpp would open: the GGUF header (v3, one tensor, no metadata), padded to 64 bytes. */
function ggufBytes(): Buffer {
  const bytes = Buffer.alloc(64)
  bytes.write('GGUF', 0, 'latin1')
  bytes.writeUInt32LE(3, 4)
  bytes.writeBigUInt64LE(1n, 8)
  return bytes
}

/** A node's files in a fresh dir: a token file (0600), a GGUF model, and a config using them. */
function writeNodeFiles(
  dir: string,
  { token, config }: { token: string; config: (files: { tokenFile: string; model: string }) => Record<string, unknown> },
): string {
  const tokenFile = path.join(dir, 'node-token')
  writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 })
  const model = path.join(dir, 'model.gguf')
  writeFileSync(model, ggufBytes())
  const file = path.join(dir, 'agent.json')
  writeFileSync(file, JSON.stringify(config({ tokenFile, model }), null, 2))
  return file
}

/** The FAIL lines of doctor's output, each with the fix on the line below it. */
function failures(stdout: string): { line: string; fix: string }[] {
  const lines = stdout.split('\n')
  return lines.flatMap((line, i) => (line.startsWith('FAIL') ? [{ line, fix: lines[i + 1] ?? '' }] : []))
}

describe('llorch-agent doctor', () => {
  it('passes against the local stack with a node created through the admin API, and leaves a running agent connected', async () => {
    const node = await createNode()
    const dir = cleanup.stateDir()
    const config = writeNodeFiles(dir, {
      token: node.token,
      config: ({ tokenFile, model }) => ({
        control_plane_url: stack.url.toString(),
        node_token_file: tokenFile,
        state_dir: dir,
        pools: [{ id: 'doctor-model', engine: 'llamacpp', binary: path.join(FIXTURE_BIN, 'llama-server'), model, gpus: [1] }],
      }),
    })
    const result = await doctor(config)
    expect(result.stdout.split('\n')).toEqual([
      `ok    config         ${config}: 1 pool: doctor-model (llamacpp)`,
      expect.stringMatching(/^ok {4}token file {5}node_token_file: .*node-token: holds a token, mode 0600, owner uid \d+$/),
      `ok    engine         pools[0].binary: ${path.join(FIXTURE_BIN, 'llama-server')} (pool doctor-model)`,
      `ok    model          pools[0].model: ${path.join(dir, 'model.gguf')} (GGUF v3, 1 tensors, 64 B)`,
      `ok    state dir      state_dir: ${dir} (writable)`,
      'ok    gpus           2 GPUs: 0 NVIDIA GeForce RTX 4090 (24564 MiB), 1 NVIDIA A100-SXM4-80GB (81920 MiB)',
      expect.stringMatching(/^ok {4}control plane {2}control_plane_url: http:\/\/127\.0\.0\.1:\d+ answers: llorch \S+ \(this agent: \S+\)$/),
      `ok    node token     accepted as node ${node.id}`,
      expect.stringMatching(
        new RegExp(
          `^ok {4}agent link {5}ws://127\\.0\\.0\\.1:\\d+/v2/agent/connect: hello answered with welcome \\(node ${node.id}, protocol \\d+, heartbeat every \\d+ ms\\)$`,
        ),
      ),
      'doctor: no problems (9 checks)',
    ])
    expect(result.exitCode).toBe(0)

    // With the agent running, doctor checks the token without a socket, so the agent keeps its link.
    const running = writeNodeFiles(cleanup.stateDir(), {
      token: node.token,
      config: ({ tokenFile }) => ({
        control_plane_url: stack.url.toString(),
        node_token_file: tokenFile,
        state_dir: dir,
        pools: [fakePoolInput('doctor-fake')],
      }),
    })
    spawnAgentCli(cleanup, running)
    const online = async () => NodeView.parse(await (await stack.admin('GET', `/v2/nodes/${node.id}`)).json())
    await waitFor(async () => (await online()).status === 'online', { message: 'the agent online' })
    const second = await doctor(running)
    expect(second.stdout).toContain(`ok    node token     accepted as node ${node.id}`)
    expect(second.stdout).toMatch(/skip  agent link {5}the agent \(pid \d+\) runs with this state dir and holds the link; a second connection would replace it/)
    expect(second.exitCode).toBe(0)
    expect((await online()).status).toBe('online')
  })

  it('fails with a named fix for each broken item of a broken config', async () => {
    const dir = cleanup.stateDir()
    const stateFile = path.join(dir, 'not-a-dir')
    writeFileSync(stateFile, '')
    mkdirSync(path.join(dir, 'models'))
    const notGguf = path.join(dir, 'models/model.bin')
    writeFileSync(notGguf, 'PK\u0003\u0004')
    const eightBytes = path.join(dir, 'models/eight.gguf')
    writeFileSync(eightBytes, 'GGUF\u0003\u0000\u0000\u0000')
    const config = writeNodeFiles(dir, {
      token: `lln.node_AAAAAAAAAAAA.${'A'.repeat(43)}`,
      config: ({ tokenFile }) => ({
        control_plane_url: stack.url.toString(),
        node_token_file: tokenFile,
        state_dir: stateFile,
        pools: [
          { id: 'missing-binary', engine: 'llamacpp', binary: '/nonexistent/llama-server', model: path.join(dir, 'models/missing.gguf'), gpus: [7] },
          { id: 'not-gguf', engine: 'llamacpp', binary: path.join(FIXTURE_BIN, 'llama-server'), model: notGguf },
          { id: 'no-program', engine: 'command', command: ['no-such-engine', '--port', '{port}'] },
          { id: 'no-dir', engine: 'vllm', binary: path.join(FIXTURE_BIN, 'vllm'), model: '/nonexistent/model-dir' },
          { id: 'eight-bytes', engine: 'llamacpp', binary: path.join(FIXTURE_BIN, 'llama-server'), model: eightBytes },
        ],
      }),
    })
    chmodSync(path.join(dir, 'node-token'), 0o644)
    const result = await doctor(config)
    expect(result.exitCode).toBe(1)
    const found = failures(result.stdout)
    const expected: [RegExp, RegExp][] = [
      [/token file +node_token_file: .*node-token is readable by group or others \(mode 0644\)/, /fix: sudo chmod 600 .*node-token/],
      [
        /engine +pools\[0\]\.binary: \/nonexistent\/llama-server is not an executable file/,
        /fix: install llama\.cpp \(its llama-server\), or set pools\[0\]\.binary to its full path/,
      ],
      [/model +pools\[0\]\.model: .*missing\.gguf does not exist/, /fix: download the GGUF file to that path, or set pools\[0\]\.model/],
      [/model +pools\[1\]\.model: .*model\.bin is not a GGUF model \(it does not start with "GGUF"\)/, /fix: download the GGUF file/],
      [/engine +pools\[2\]\.command\[0\]: no-such-engine is not on PATH/, /fix: give the full path of the program in pools\[2\]\.command\[0\]/],
      [/model +pools\[3\]\.model: \/nonexistent\/model-dir is not a directory/, /fix: set pools\[3\]\.model to the model's directory or to a Hugging Face id/],
      [/model +pools\[4\]\.model: .*eight\.gguf is not a GGUF model \(it is 8 bytes, too short for a GGUF model\)/, /fix: download the GGUF file/],
      [/state dir +state_dir: .*not-a-dir is not a directory/, /fix: sudo install -d -o llorch -g llorch .*not-a-dir, or set state_dir/],
      [/gpus +pools\[0\]\.gpus: GPU 7 is not on this node \(nvidia-smi lists 0, 1\)/, /fix: set pools\[0\]\.gpus to GPUs this node has/],
      [/node token +refused \(401\): unknown node token/, /fix: put the token that POST \/v2\/nodes printed for this node in .*node-token/],
    ]
    for (const [line, fix] of expected) {
      const hit = found.find((f) => line.test(f.line))
      expect(hit, `a FAIL line matching ${line} in:\n${result.stdout}`).toBeDefined()
      expect(hit?.fix).toMatch(fix)
    }
    expect(found).toHaveLength(expected.length)
    expect(result.stdout.trimEnd().split('\n').at(-1)).toBe(`doctor: ${expected.length} problems; fix them and run llorch-agent doctor again`)
  })

  it('names the fix for a missing token file, a failing nvidia-smi, an unreachable control plane and a bad field', async () => {
    const dir = cleanup.stateDir()
    const unreachable = path.join(dir, 'unreachable.json')
    const closedPort = await resolvePort({ port: 'auto', host: '127.0.0.1' })
    writeFileSync(
      unreachable,
      JSON.stringify({
        control_plane_url: `http://127.0.0.1:${closedPort}`,
        node_token_file: path.join(dir, 'missing-token'),
        state_dir: path.join(dir, 'state'),
        pools: [fakePoolInput('m')],
      }),
    )
    const result = await doctor(unreachable, { FAKE_NVIDIA_SMI_EXIT: '9' })
    expect(result.exitCode).toBe(1)
    expect(failures(result.stdout).map((f) => [f.line.replace(/ +/g, ' '), f.fix.trim()])).toEqual([
      [
        `FAIL token file node_token_file: ${dir}/missing-token does not exist`,
        expect.stringMatching(/^fix: write the token that POST \/v2\/nodes printed into it: echo 'lln\.…' \| sudo tee /),
      ],
      [
        "FAIL gpus nvidia-smi failed (exit 9): NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.",
        expect.stringMatching(/^fix: run nvidia-smi by itself; reinstall or reload the NVIDIA driver/),
      ],
      [
        expect.stringMatching(/^FAIL control plane control_plane_url: cannot reach http:\/\/127\.0\.0\.1:\d+: fetch failed: connect ECONNREFUSED/),
        `fix: check control_plane_url in ${unreachable}, DNS, and that this machine may open outbound HTTPS connections (proxy, firewall)`,
      ],
    ])

    const badField = path.join(dir, 'bad.yaml')
    writeFileSync(badField, 'pools:\n  - id: a\n    engine: llamacpp\n    model: /m.gguf\n    slots: many\n')
    const bad = await doctor(badField)
    expect(bad.exitCode).toBe(1)
    expect(failures(bad.stdout)).toEqual([
      {
        line: 'FAIL  config         pools[0].slots: expected an integer, got "many" (string)',
        fix: `      fix: edit ${badField} (llorch-agent validate lists the same problems)`,
      },
    ])
  })
})
