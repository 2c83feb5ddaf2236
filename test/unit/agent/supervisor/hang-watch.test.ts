import { describe, expect, it } from 'vitest'
import { HUNG_AFTER_MISSED_DEADLINES, HangWatch } from '../../../../node-agent/supervisor/hang-watch.ts'

describe('HangWatch', () => {
  it(`calls an engine hung after ${HUNG_AFTER_MISSED_DEADLINES} tasks in a row missed their first-token deadline`, () => {
    const watch = new HangWatch()
    expect(watch.missed('first_token')).toBeNull()
    expect(watch.missed('first_token')).toBe('hung: no first token from 2 tasks')
  })

  it('forgives a miss once a task between is served', () => {
    const watch = new HangWatch()
    expect(watch.missed('first_token')).toBeNull()
    watch.served()
    expect(watch.missed('first_token')).toBeNull()
  })

  it('counts tasks that fell silent mid-stream, alone or with first-token misses', () => {
    const idle = new HangWatch()
    idle.missed('idle')
    expect(idle.missed('idle')).toBe('hung: silent mid-stream in 2 tasks')
    const mixed = new HangWatch()
    mixed.missed('idle')
    expect(mixed.missed('first_token')).toBe('hung: no first token from 1 task, silent mid-stream in 1 task')
  })
})
