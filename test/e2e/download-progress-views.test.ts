import path from 'node:path'
import { execa } from 'execa'
import { chromium } from 'playwright-core'
import { afterEach, describe, expect, it } from 'vitest'
import { modelBytes, startHubServer } from '../fixtures/hub-server.ts'
import type { HubServer } from '../fixtures/hub-server.ts'
import { fakePoolInput } from '../support/agents.ts'
import { chromiumLaunchOptions } from '../support/chromium.ts'
import { getPool, startLinkedAgent } from '../support/linked-agent.ts'
import { TEST_ADMIN_TOKEN, useStack } from '../support/local-stack.ts'
import { REPO_ROOT, useProcessCleanup, waitFor } from '../support/processes.ts'

const CEILING_MS = 20_000
const LLORCH_CLI = path.join(REPO_ROOT, 'cli/llorch.ts')
const MODEL = modelBytes(1_500_000, 31)
const servers: HubServer[] = []
afterEach(async () => {
  for (const server of servers.splice(0)) await server.close()
})

describe('the dashboard and llorch pools show while a model downloads', () => {
  const cleanup = useProcessCleanup()
  const stackOf = useStack({ heartbeatIntervalMs: 200 })

  it('show the file, the bytes and the rate (a progress bar on the page, dropped once the replica starts)', async () => {
    const stack = stackOf()
    const server = await startHubServer({ repos: { 'org/tiny': { commit: '3'.repeat(40), refs: { main: '3'.repeat(40) }, files: { 'tiny.gguf': MODEL } } } })
    servers.push(server)
    server.knobs.bytesPerSecond = 150_000
    const agent = await startLinkedAgent(cleanup, stack, {
      name: 'gpu-box-dl',
      pools: [fakePoolInput('tiny', ['--model-file', '{model}'], { model: { hf: 'org/tiny', file: 'tiny.gguf' } })],
      env: { HF_ENDPOINT: server.url },
    })
    await waitFor(async () => (await getPool(stack, 'tiny'))?.replicas[0]?.state === 'downloading', { timeoutMs: CEILING_MS, message: 'tiny downloading' })
    const shown = await execa(process.execPath, [LLORCH_CLI, '--url', stack.url.toString(), '--admin-token', TEST_ADMIN_TOKEN, 'pools', 'show', 'tiny'], {
      reject: false,
      env: { LLORCH_STATE_DIR: cleanup.stateDir() },
    })
    expect(shown.stdout).toMatch(
      new RegExp(`tiny +${agent.nodeId} +downloading +0/1 +command +tiny\\.gguf \\d+% [\\d.]+ [kM]?B / 1\\.5 MB at [\\d.]+ [kM]?B/s`),
    )

    const browser = await chromium.launch(await chromiumLaunchOptions())
    cleanup.defer(() => browser.close())
    const page = await browser.newPage()
    const pageErrors: string[] = []
    page.on('pageerror', (error) => pageErrors.push(error.message))
    await page.goto(stack.url.toString())
    await page.getByLabel('Admin token or admin API key').fill(TEST_ADMIN_TOKEN)
    await page.getByRole('button', { name: 'Connect' }).click()
    const replica = page.locator(`[data-replica="${agent.nodeId}/tiny"]`)
    const bar = replica.locator('progress[data-field="download"]')
    await bar.waitFor({ timeout: CEILING_MS })
    expect(await bar.getAttribute('max')).toBe(String(MODEL.length))
    expect(Number(await bar.getAttribute('value'))).toBeGreaterThan(0)
    expect(await bar.getAttribute('aria-label')).toBe('download of tiny.gguf')
    expect(await replica.locator('[data-field="download-text"]').textContent()).toMatch(
      /^tiny\.gguf \d+% [\d.]+ [kM]?B \/ 1\.5 MB at [\d.]+ [kM]?B\/s(, \d+ s left)?$/,
    )
    expect(await replica.locator('[data-field="state"]').textContent()).toBe('downloading')

    await expect.poll(() => replica.locator('[data-field="state"]').textContent(), { timeout: CEILING_MS }).toBe('ready')
    expect(await bar.count()).toBe(0)
    expect(pageErrors).toEqual([])
  })
})
