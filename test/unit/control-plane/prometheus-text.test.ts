import { describe, expect, it } from 'vitest'
import { renderPrometheus } from '../../../control-plane/metrics/prometheus-text.ts'
import { histogramBuckets, parsePrometheus, sampleValue } from '../../support/prometheus.ts'

describe('Prometheus text rendering', () => {
  it('writes HELP and TYPE lines, labelled samples and cumulative histogram buckets that a parser reads back', () => {
    const text = renderPrometheus([
      {
        name: 'llorch_pool_tasks_rejected_total',
        help: 'Refused tasks.',
        type: 'counter',
        samples: [
          { labels: { pool: 'a', reason: 'queue_full' }, value: 3 },
          { labels: { pool: 'b', reason: 'no_replica' }, value: 1 },
        ],
      },
      { name: 'llorch_pool_queue_depth', help: 'Waiting tasks.', type: 'gauge', samples: [{ labels: { pool: 'a' }, value: 2 }] },
      {
        name: 'llorch_pool_ttft_seconds',
        help: 'TTFT.',
        type: 'histogram',
        samples: [{ labels: {}, histogram: { bounds: [0.1, 1], cumulative: [1, 3, 4], sum: 5.5, count: 4 } }],
      },
    ])
    expect(text).toContain('# HELP llorch_pool_queue_depth Waiting tasks.\n# TYPE llorch_pool_queue_depth gauge\nllorch_pool_queue_depth{pool="a"} 2\n')
    expect(text).toContain('llorch_pool_ttft_seconds_bucket{le="+Inf"} 4\nllorch_pool_ttft_seconds_sum 5.5\nllorch_pool_ttft_seconds_count 4\n')
    const families = parsePrometheus(text)
    expect(families.map((f) => [f.name, f.type])).toEqual([
      ['llorch_pool_tasks_rejected_total', 'COUNTER'],
      ['llorch_pool_queue_depth', 'GAUGE'],
      ['llorch_pool_ttft_seconds', 'HISTOGRAM'],
    ])
    expect(sampleValue(families, 'llorch_pool_tasks_rejected_total', { pool: 'b', reason: 'no_replica' })).toBe(1)
    expect(histogramBuckets(families, 'llorch_pool_ttft_seconds')).toEqual({ '0.1': 1, '1': 3, '+Inf': 4 })
  })

  it('escapes quotes, backslashes and newlines in label values and help', () => {
    const text = renderPrometheus([
      { name: 'llorch_x', help: 'line one\nline \\two', type: 'gauge', samples: [{ labels: { model: 'A "big" GPU\\1\n' }, value: 1 }] },
    ])
    expect(text).toContain('# HELP llorch_x line one\\nline \\\\two\n')
    expect(text).toContain('llorch_x{model="A \\"big\\" GPU\\\\1\\n"} 1\n')
    expect(sampleValue(parsePrometheus(text), 'llorch_x')).toBe(1)
  })

  it('leaves out families without samples and refuses names Prometheus cannot take', () => {
    expect(renderPrometheus([{ name: 'llorch_empty', help: 'nothing', type: 'gauge', samples: [] }])).toBe('')
    expect(() => renderPrometheus([{ name: 'llorch-bad', help: '', type: 'gauge', samples: [{ labels: {}, value: 1 }] }])).toThrow(
      'invalid Prometheus metric name "llorch-bad"',
    )
    expect(() => renderPrometheus([{ name: 'llorch_ok', help: '', type: 'gauge', samples: [{ labels: { 'bad-label': 'x' }, value: 1 }] }])).toThrow(
      'invalid Prometheus label name "bad-label"',
    )
  })
})
