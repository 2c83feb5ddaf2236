import { mkdirSync, statSync } from 'node:fs'
import path from 'node:path'
import OpenAI from 'openai'
import { chromium } from 'playwright-core'
import { describe, expect, it } from 'vitest'
import { CreateApiKeyResponse, CreateNodeResponse } from '../../protocol/index.ts'
import { fakePoolInput } from '../support/agents.ts'
import { chatLines, uploadLines } from '../support/batch-files.ts'
import { chromiumLaunchOptions } from '../support/chromium.ts'
import { getNode, getPool, startLinkedAgent } from '../support/linked-agent.ts'
import { TEST_ADMIN_TOKEN, useStack } from '../support/local-stack.ts'
import { REPO_ROOT, useProcessCleanup, waitFor } from '../support/processes.ts'

/** `LLORCH_UPDATE_SCREENSHOTS=1` writes the README's screenshot; otherwise it goes to a temporary dir. */
const README_SCREENSHOT = path.join(REPO_ROOT, 'docs/dashboard.png')
const CEILING_MS = 20_000
const POOL = 'demo-model'
const BROKEN = 'broken-model'

describe('the dashboard in headless Chromium', () => {
  const cleanup = useProcessCleanup()
  const stackOf = useStack({ heartbeatIntervalMs: 200 })

  it('lists nodes (never connected ones too), pools with live charts, a failed replica log tail, running batches with their progress and keys with their usage; drains a pool and cordons a node after a confirmation', async () => {
    const stack = stackOf()
    const agent = await startLinkedAgent(cleanup, stack, {
      name: 'gpu-box-1',
      pools: [
        fakePoolInput(POOL, ['--tokens', '40', '--tokens-per-second', '400'], { slots: 2 }),
        fakePoolInput(BROKEN, ['--fail-start', '--exit-code', '3'], { restart: { initial_delay_ms: 1, max_crashes: 1 } }),
      ],
    })
    await waitFor(async () => (await getPool(stack, POOL))?.state === 'ready', { timeoutMs: CEILING_MS, message: `pool ${POOL} ready` })
    await waitFor(async () => (await getPool(stack, BROKEN))?.replicas[0]?.state === 'failed', { timeoutMs: CEILING_MS, message: `pool ${BROKEN} failed` })
    const { key, id: keyId } = CreateApiKeyResponse.parse(
      await (await stack.admin('POST', '/v2/api-keys', { name: 'dash', scopes: ['inference'], limits: { requests_per_minute: 600 } })).json(),
    )
    const spare = CreateNodeResponse.parse(await (await stack.admin('POST', '/v2/nodes', { name: 'spare-box' })).json())

    const browser = await chromium.launch(await chromiumLaunchOptions())
    cleanup.defer(() => browser.close())
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 }, colorScheme: 'light' })
    const pageErrors: string[] = []
    page.on('pageerror', (error) => pageErrors.push(error.message))
    const notFound: string[] = []
    page.on('response', (response) => {
      if (response.status() === 404) notFound.push(response.url())
    })
    await page.goto(stack.url.toString())
    expect(await page.title()).toBe('llorch dashboard')

    await page.getByLabel('Admin token or admin API key').fill(TEST_ADMIN_TOKEN)
    await page.getByRole('button', { name: 'Connect' }).click()
    const node = page.locator(`[data-node="${agent.nodeId}"]`)
    await node.waitFor({ timeout: CEILING_MS })
    expect(await node.textContent()).toContain('gpu-box-1')
    await expect.poll(() => node.locator('[data-field="status"]').textContent(), { timeout: CEILING_MS }).toBe('online')
    expect(await node.textContent()).toContain('NVIDIA GeForce RTX 4090')
    expect(page.url()).not.toContain(TEST_ADMIN_TOKEN)
    expect(await page.evaluate(() => sessionStorage.getItem('llorch.adminToken'))).toBe(TEST_ADMIN_TOKEN)

    // A node registered but never connected says so, not "CPU only".
    const spareRow = page.locator(`[data-node="${spare.id}"]`)
    await expect.poll(() => spareRow.locator('[data-field="gpus"]').textContent(), { timeout: CEILING_MS }).toBe('never connected')
    expect(await spareRow.locator('[data-field="status"]').textContent()).toBe('new')

    const replicaState = page.locator(`[data-replica="${agent.nodeId}/${POOL}"] [data-field="state"]`)
    await expect.poll(() => replicaState.textContent(), { timeout: CEILING_MS }).toBe('ready')
    const broken = page.locator(`[data-replica="${agent.nodeId}/${BROKEN}"]`)
    await expect.poll(() => broken.locator('[data-field="state"]').textContent(), { timeout: CEILING_MS }).toBe('failed')
    await broken.locator('summary').click()
    expect(await broken.locator('pre').textContent()).toContain('failing at start as asked (--fail-start), exit code 3')

    // A batch for the pool no replica can serve waits, running: the page shows its progress.
    const batchClient = new OpenAI({ apiKey: key, baseURL: new URL('/v1', stack.url).toString(), maxRetries: 0 })
    const batch = await batchClient.batches.create({
      input_file_id: (await uploadLines(batchClient, chatLines(BROKEN, 2))).id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    })
    const batchRow = page.locator(`[data-batch="${batch.id}"]`)
    await batchRow.waitFor({ timeout: CEILING_MS })
    // Validating at first, then running once its lines are checked.
    await expect.poll(() => batchRow.locator('[data-field="batch-status"]').textContent(), { timeout: CEILING_MS }).toBe('in_progress')
    expect(await batchRow.locator('[data-field="batch-progress"]').textContent()).toBe(' 0 / 2')

    // Traffic while the page polls: the tokens/s chart of the pool shows it.
    const openai = new OpenAI({ apiKey: key, baseURL: new URL('/v1', stack.url).toString(), maxRetries: 0 })
    const tokensCaption = page.locator(`[data-charts="${POOL}"] figcaption`).first()
    const tokensLine = page.locator(`[data-charts="${POOL}"] polyline`).first()
    await waitFor(
      async () => {
        await Promise.all(
          [1, 2].map(async () => {
            for await (const _chunk of await openai.chat.completions.create({ model: POOL, stream: true, messages: [{ role: 'user', content: 'hello' }] }));
          }),
        )
        const caption = (await tokensCaption.textContent()) ?? ''
        const points = (await tokensLine.getAttribute('points'))?.split(' ').length ?? 0
        return !caption.startsWith('Tokens/s: 0.0') && points >= 4
      },
      { timeoutMs: CEILING_MS, intervalMs: 50, message: 'a tokens/s reading above zero, after a few polls, on the page' },
    )

    // The keys-and-usage view: the key, its limits, and the requests it made.
    const keyRow = page.locator(`[data-key="${keyId}"]`)
    expect(await keyRow.locator('[data-field="limits"]').textContent()).toBe('requests per minute 600')
    await expect.poll(async () => Number(await keyRow.locator('[data-field="requests"]').textContent()), { timeout: CEILING_MS }).toBeGreaterThan(0)
    expect(Number(await keyRow.locator('[data-field="completion-tokens"]').textContent())).toBeGreaterThan(0)

    const screenshotDir = process.env.LLORCH_UPDATE_SCREENSHOTS === '1' ? path.dirname(README_SCREENSHOT) : cleanup.stateDir()
    mkdirSync(screenshotDir, { recursive: true })
    const screenshot = path.join(screenshotDir, 'dashboard.png')
    await page.screenshot({ path: screenshot, fullPage: true })
    expect(statSync(screenshot).size).toBeGreaterThan(10_000)

    let question = ''
    page.once('dialog', (dialog) => {
      question = dialog.message()
      void dialog.accept()
    })
    await page.getByRole('button', { name: `drain ${POOL}` }).click()
    await expect.poll(() => replicaState.textContent(), { timeout: CEILING_MS }).toBe('stopped')
    expect(question).toContain(`Drain pool "${POOL}" on every node?`)
    expect(await page.locator('#status').textContent()).toBe(`drain sent to 1 node(s) of ${POOL}`)

    // Dismissing the confirmation sends nothing.
    page.once('dialog', (dialog) => void dialog.dismiss())
    await page.getByRole('button', { name: `preload ${POOL}` }).click()
    expect((await getPool(stack, POOL))?.replicas[0]?.state).toBe('stopped')

    // Cordon and uncordon a node from its row, each after a confirmation.
    const cordoned = node.locator('[data-field="cordoned"]')
    page.once('dialog', (dialog) => void dialog.accept())
    await page.getByRole('button', { name: 'cordon gpu-box-1', exact: true }).click()
    await cordoned.waitFor({ timeout: CEILING_MS })
    expect(await page.locator('#status').textContent()).toBe('gpu-box-1 cordoned')
    expect((await getNode(stack, agent.nodeId)).cordoned_at).not.toBeNull()
    page.once('dialog', (dialog) => void dialog.accept())
    await page.getByRole('button', { name: 'uncordon gpu-box-1' }).click()
    await cordoned.waitFor({ state: 'detached', timeout: CEILING_MS })
    expect(await page.locator('#status').textContent()).toBe('gpu-box-1 uncordoned')
    expect((await getNode(stack, agent.nodeId)).cordoned_at).toBeNull()

    expect(notFound).toEqual([])
    expect(await page.locator('link[rel="icon"]').getAttribute('href')).toMatch(/^data:image\/svg\+xml,/)
    expect(pageErrors).toEqual([])
  })
})
