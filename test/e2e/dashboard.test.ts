import { mkdirSync, statSync } from 'node:fs'
import path from 'node:path'
import OpenAI from 'openai'
import { chromium } from 'playwright-core'
import { describe, expect, it } from 'vitest'
import { CreateApiKeyResponse } from '../../protocol/index.ts'
import { fakePoolInput } from '../support/agents.ts'
import { chromiumLaunchOptions } from '../support/chromium.ts'
import { getPool, startLinkedAgent } from '../support/linked-agent.ts'
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

  it('lists the node and its pools with live charts, shows a failed replica log tail, and drains a pool after a confirmation', async () => {
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
    const { key } = CreateApiKeyResponse.parse(await (await stack.admin('POST', '/v2/api-keys', { name: 'dash', scopes: ['inference'] })).json())

    const browser = await chromium.launch(await chromiumLaunchOptions())
    cleanup.defer(() => browser.close())
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 }, colorScheme: 'light' })
    const pageErrors: string[] = []
    page.on('pageerror', (error) => pageErrors.push(error.message))
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

    const replicaState = page.locator(`[data-replica="${agent.nodeId}/${POOL}"] [data-field="state"]`)
    await expect.poll(() => replicaState.textContent(), { timeout: CEILING_MS }).toBe('ready')
    const broken = page.locator(`[data-replica="${agent.nodeId}/${BROKEN}"]`)
    await expect.poll(() => broken.locator('[data-field="state"]').textContent(), { timeout: CEILING_MS }).toBe('failed')
    await broken.locator('summary').click()
    expect(await broken.locator('pre').textContent()).toContain('failing at start as asked (--fail-start), exit code 3')

    // Traffic while the page polls: the tokens/s chart of the pool shows it.
    const openai = new OpenAI({ apiKey: key, baseURL: new URL('/v1', stack.url).toString(), maxRetries: 0 })
    const tokensCaption = page.locator(`[data-charts="${POOL}"] figcaption`).first()
    const tokensLine = page.locator(`[data-charts="${POOL}"] polyline`).first()
    await waitFor(async () => {
      await Promise.all([1, 2].map(async () => {
        for await (const _chunk of await openai.chat.completions.create({ model: POOL, stream: true, messages: [{ role: 'user', content: 'hello' }] }));
      }))
      const caption = (await tokensCaption.textContent()) ?? ''
      const points = (await tokensLine.getAttribute('points'))?.split(' ').length ?? 0
      return !caption.startsWith('Tokens/s: 0.0') && points >= 4
    }, { timeoutMs: CEILING_MS, intervalMs: 50, message: 'a tokens/s reading above zero, after a few polls, on the page' })

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
    expect(pageErrors).toEqual([])
  })
})
