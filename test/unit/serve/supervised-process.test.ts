import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { RESTART_INITIAL_DELAY_MS, SupervisedProcess } from '../../../serve/supervised-process.ts'
import { isAlive, waitFor } from '../../support/processes.ts'

describe('a supervised child of llorch serve', () => {
  it('is started again after each crash, the delay doubling, the exit code logged', async () => {
    const events: { event: string; fields: Record<string, unknown> }[] = []
    const child = new SupervisedProcess({ name: 'crasher', file: process.execPath, args: ['-e', 'process.exit(3)'], env: {} }, (event, fields = {}) =>
      events.push({ event, fields }),
    )
    child.start()
    try {
      await waitFor(() => events.filter((e) => e.event === 'serve.child_exited').length >= 3, { timeoutMs: 20_000, message: 'three crashes' })
    } finally {
      await child.stop()
    }
    const exits = events.filter((e) => e.event === 'serve.child_exited').map((e) => e.fields)
    expect(exits.slice(0, 3)).toEqual([
      { child: 'crasher', code: 3, signal: null, restart_in_ms: RESTART_INITIAL_DELAY_MS, crashes_in_a_row: 1 },
      { child: 'crasher', code: 3, signal: null, restart_in_ms: RESTART_INITIAL_DELAY_MS * 2, crashes_in_a_row: 2 },
      { child: 'crasher', code: 3, signal: null, restart_in_ms: RESTART_INITIAL_DELAY_MS * 4, crashes_in_a_row: 3 },
    ])
    expect(events.filter((e) => e.event === 'serve.child_started')).toHaveLength(3)
  })

  it('stops on SIGTERM and is not started again', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'llorch-supervised-'))
    const pidFile = path.join(dir, 'pid')
    const script = path.join(dir, 'wait.mjs')
    writeFileSync(
      script,
      `import { writeFileSync } from 'node:fs'\nwriteFileSync(${JSON.stringify(pidFile)}, String(process.pid))\nsetInterval(() => {}, 1000)\n`,
    )
    const events: string[] = []
    const child = new SupervisedProcess({ name: 'waiter', file: process.execPath, args: [script], env: {} }, (event) => events.push(event))
    try {
      child.start()
      const pid = await waitFor(
        () => {
          try {
            return Number(readFileSync(pidFile, 'utf8'))
          } catch {
            return 0
          }
        },
        { message: 'the child pid' },
      )
      await child.stop()
      expect(isAlive(pid)).toBe(false)
      expect(events).toEqual(['serve.child_started', 'serve.child_stopped'])
      expect(child.pid).toBeNull()
    } finally {
      await child.stop()
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
