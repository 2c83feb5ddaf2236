import { describe, expect, it } from 'vitest'
import { parseNvidiaSmi } from '../../../node-agent/gpus/gpus.ts'

describe('nvidia-smi output', () => {
  it('reads index, name, memory and utilisation, keeping commas inside a name', () => {
    expect(parseNvidiaSmi('0, NVIDIA GeForce RTX 4090, 24564, 1024, 37\n1, Weird, Inc. GPU, 81920, [N/A], [N/A]\n\n')).toEqual([
      { index: 0, name: 'NVIDIA GeForce RTX 4090', memory_total_mib: 24564, memory_used_mib: 1024, utilization_percent: 37 },
      { index: 1, name: 'Weird, Inc. GPU', memory_total_mib: 81920, memory_used_mib: 0, utilization_percent: null },
    ])
  })

  it('skips lines that are not GPU rows', () => {
    expect(parseNvidiaSmi('No devices were found\n')).toEqual([])
  })
})
