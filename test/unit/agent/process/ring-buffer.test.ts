import { describe, expect, it } from 'vitest'
import { LineRingBuffer, RING_BUFFER_MAX_LINE_CHARS } from '../../../../node-agent/process/ring-buffer.ts'

describe('line ring buffer', () => {
  it('keeps the last lines written, joined from arbitrary chunks', () => {
    const ring = new LineRingBuffer({ maxLines: 3 })
    ring.write('one\ntw')
    ring.write('o\nthree\nfour\nfi')
    expect(ring.tail()).toBe('three\nfour\nfi')
    ring.write('ve\n')
    expect(ring.tail()).toBe('three\nfour\nfive')
    expect(ring.tail(1)).toBe('five')
  })

  it('cuts a runaway line instead of keeping all of it', () => {
    const ring = new LineRingBuffer({ maxLines: 2 })
    ring.write(`${'x'.repeat(RING_BUFFER_MAX_LINE_CHARS * 3)}\nshort\n`)
    const [first, second] = ring.tail().split('\n')
    expect(first?.endsWith('… [line cut]')).toBe(true)
    expect(first?.length).toBeLessThan(RING_BUFFER_MAX_LINE_CHARS + 20)
    expect(second).toBe('short')
  })
})
