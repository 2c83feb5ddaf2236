import { existsSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { execa } from 'execa'
import { afterEach, describe, expect, it } from 'vitest'
import { modelBytes, sha256Of, startHubServer } from '../fixtures/hub-server.ts'
import type { HubServer } from '../fixtures/hub-server.ts'
import { fakePoolInput, writeAgentConfig } from '../support/agents.ts'
import { AGENT_CLI, REPO_ROOT, useProcessCleanup } from '../support/processes.ts'

const cleanup = useProcessCleanup()
const COMMIT = 'c'.repeat(40)
const MODEL = modelBytes(200_000, 21)
const OTHER = modelBytes(90_000, 22)
const servers: HubServer[] = []
afterEach(async () => {
  for (const server of servers.splice(0)) await server.close()
})

async function hub(): Promise<HubServer> {
  const server = await startHubServer({ repos: { 'org/tiny': { commit: COMMIT, refs: { main: COMMIT }, files: { 'tiny.gguf': MODEL, 'other.gguf': OTHER } } } })
  servers.push(server)
  return server
}

const cli = (server: HubServer, args: string[]) =>
  execa(process.execPath, [AGENT_CLI, ...args], { reject: false, cwd: REPO_ROOT, stdin: 'ignore', env: { HF_ENDPOINT: server.url } })

const pool = (id: string, file: string) => fakePoolInput(id, ['--model-file', '{model}'], { model: { hf: 'org/tiny', file } })

describe('validate and doctor on sources', () => {
  it('doctor asks the source without downloading and names the numbers when it does not fit; validate checks the cached bytes against their sha256', async () => {
    const server = await hub()
    const stateDir = cleanup.stateDir()
    const config = writeAgentConfig(stateDir, [pool('tiny', 'tiny.gguf')])
    const before = await cli(server, ['doctor', '--config', config])
    expect(before.stdout).toMatch(
      /ok {4}source {9}pools\[0\]\.model: org\/tiny@main: tiny\.gguf: reachable, 1 file to fetch, 200\.0 kB \([\d.]+ [kMGT]?B free in .*\/models\)/,
    )
    expect(server.requests.filter((r) => r.method === 'GET')).toEqual([])
    server.knobs.claimedSize = 7_000_000_000_000_000
    const full = await cli(server, ['doctor', '--config', config])
    expect(full.stdout).toMatch(
      /FAIL  source {9}pools\[0\]\.model: org\/tiny@main: tiny\.gguf: needs 7000\.0 TB in .*\/models, [\d.]+ [kMGT]?B free\n {6}fix: free space in/,
    )
    server.knobs.claimedSize = null

    const notYet = await cli(server, ['validate', '--config', config])
    expect(notYet.exitCode).toBe(0)
    expect((await cli(server, ['pull', '--config', config])).exitCode).toBe(0)
    const blob = path.join(stateDir, 'models', 'models--org--tiny', 'blobs', sha256Of(MODEL))
    writeFileSync(blob, OTHER)
    const corrupt = await cli(server, ['validate', '--config', config])
    expect(corrupt.exitCode).toBe(1)
    expect(corrupt.stderr).toContain(
      `${config}: pools[0].model: models--org--tiny/blobs/${sha256Of(MODEL)} in ${path.join(stateDir, 'models')} has sha256 ${sha256Of(OTHER)}, but ${sha256Of(MODEL)} was fetched; fix: delete it and run llorch-agent pull tiny`,
    )
  })
})

describe('llorch-agent pull, models, prune', () => {
  it('pulls into the cache without starting anything, lists it with the pools using it, and prunes what no pool uses', async () => {
    const server = await hub()
    const stateDir = cleanup.stateDir()
    const both = writeAgentConfig(stateDir, [pool('tiny', 'tiny.gguf'), pool('other', 'other.gguf')])
    const pulled = await cli(server, ['pull', '--config', both])
    expect(pulled.stderr).toBe('')
    const snapshot = path.join(stateDir, 'models', 'models--org--tiny', 'snapshots', COMMIT)
    expect(pulled.stdout.split('\n')).toEqual([
      'pool tiny: fetching tiny.gguf (200.0 kB in all)',
      `pool tiny: ready, model ${path.join(snapshot, 'tiny.gguf')}`,
      'pool other: fetching other.gguf (90.0 kB in all)',
      `pool other: ready, model ${path.join(snapshot, 'other.gguf')}`,
    ])
    expect(pulled.exitCode).toBe(0)
    expect(existsSync(path.join(stateDir, 'engines'))).toBe(false)

    const listed = await cli(server, ['models', '--config', both])
    expect(listed.exitCode).toBe(0)
    const lines = listed.stdout.split('\n')
    expect(lines[0]).toBe(`${path.join(stateDir, 'models')}: 2 files, 290.0 kB`)
    expect(lines[1]).toMatch(/^FILE +SIZE +SHA256 +COMMIT +POOLS +LAST USED +SOURCE$/)
    expect(lines.slice(2).map((l) => l.split(/ {2,}/).slice(0, 5))).toEqual(
      expect.arrayContaining([
        ['tiny.gguf', '200.0 kB', sha256Of(MODEL).slice(0, 12), COMMIT.slice(0, 12), 'tiny'],
        ['other.gguf', '90.0 kB', sha256Of(OTHER).slice(0, 12), COMMIT.slice(0, 12), 'other'],
      ]),
    )

    const onlyTiny = writeAgentConfig(stateDir, [pool('tiny', 'tiny.gguf')])
    const pruned = await cli(server, ['prune', '--config', onlyTiny])
    expect(pruned.stdout.split('\n')).toEqual([
      'removed other.gguf (90.0 kB, org/tiny)',
      `${path.join(stateDir, 'models')}: removed 1 file no pool uses, 90.0 kB freed`,
    ])
    expect(existsSync(path.join(snapshot, 'other.gguf'))).toBe(false)
    expect(existsSync(path.join(snapshot, 'tiny.gguf'))).toBe(true)
  })

  it('exits 1 with the reason when a pull fails, and names a pool the config does not have', async () => {
    const server = await hub()
    server.knobs.wrongBytes = true
    const stateDir = cleanup.stateDir()
    const config = writeAgentConfig(stateDir, [pool('tiny', 'tiny.gguf')])
    const failed = await cli(server, ['pull', '--config', config, 'tiny'])
    expect(failed.exitCode).toBe(1)
    expect(failed.stderr).toContain(`pool tiny: tiny.gguf: sha256 mismatch, expected ${sha256Of(MODEL)}, got `)
    const unknown = await cli(server, ['pull', '--config', config, 'nope'])
    expect(unknown.exitCode).toBe(1)
    expect(unknown.stderr).toContain(`${config} has no pool "nope" (it has tiny)`)
  })
})
