import { describe, expect, it } from 'vitest'
import { busySlotFreeInMs, predictStartMs } from '../../../control-plane/pool/start-prediction.ts'

describe('predictStartMs', () => {
  it('starts the head of the queue at once when a slot is free', () => {
    expect(predictStartMs({ position: 0, slotFreeInMs: [0, 400], averageTaskMs: 1000 })).toBe(0)
  })

  it('gives each task ahead the next slot to free up, one measured task length each', () => {
    // Two slots, freeing in 200 and 700 ms; tasks take 1 s.
    const at = (position: number) => predictStartMs({ position, slotFreeInMs: [700, 200], averageTaskMs: 1000 })
    expect([at(0), at(1), at(2), at(3), at(4)]).toEqual([200, 700, 1200, 1700, 2200])
  })

  it('follows the measured task length', () => {
    expect(predictStartMs({ position: 3, slotFreeInMs: [0], averageTaskMs: 250 })).toBe(750)
    expect(predictStartMs({ position: 3, slotFreeInMs: [0], averageTaskMs: 4000 })).toBe(12_000)
  })

  it('answers 0 when there is no slot to count on', () => {
    expect(predictStartMs({ position: 5, slotFreeInMs: [], averageTaskMs: 1000 })).toBe(0)
  })
})

describe('busySlotFreeInMs', () => {
  it('is what the running task has left of a measured length, never negative', () => {
    expect(busySlotFreeInMs({ grantedAt: 1_000, now: 1_300, averageTaskMs: 1_000 })).toBe(700)
    expect(busySlotFreeInMs({ grantedAt: 1_000, now: 5_000, averageTaskMs: 1_000 })).toBe(0)
  })
})
