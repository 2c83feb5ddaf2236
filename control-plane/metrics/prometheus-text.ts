import type { HistogramSnapshot } from '../../protocol/index.ts'

export type MetricType = 'counter' | 'gauge' | 'histogram'
export type Labels = Readonly<Record<string, string>>

export type Sample = { labels: Labels; value: number } | { labels: Labels; histogram: HistogramSnapshot }

/** One metric name with its help text, its type and a sample per label set. */
export interface MetricFamily {
  name: string
  help: string
  type: MetricType
  samples: readonly Sample[]
}

/** The content type of Prometheus' text exposition format. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/

function escapeHelp(text: string): string {
  return text.replaceAll('\\', '\\\\').replaceAll('\n', '\\n')
}

function escapeLabelValue(value: string): string {
  return value.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('\n', '\\n')
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN'
  if (value === Infinity) return '+Inf'
  if (value === -Infinity) return '-Inf'
  return String(value)
}

function formatLabels(labels: Labels): string {
  const pairs = Object.entries(labels).map(([name, value]) => {
    if (!LABEL_NAME.test(name)) throw new Error(`invalid Prometheus label name "${name}"`)
    return `${name}="${escapeLabelValue(value)}"`
  })
  return pairs.length === 0 ? '' : `{${pairs.join(',')}}`
}

function sampleLines(name: string, sample: Sample): string[] {
  if ('value' in sample) return [`${name}${formatLabels(sample.labels)} ${formatValue(sample.value)}`]
  const { bounds, cumulative, sum, count } = sample.histogram
  const buckets = [...bounds.map(formatValue), '+Inf'].map(
    (le, i) => `${name}_bucket${formatLabels({ ...sample.labels, le })} ${formatValue(cumulative[i] ?? count)}`,
  )
  return [...buckets, `${name}_sum${formatLabels(sample.labels)} ${formatValue(sum)}`, `${name}_count${formatLabels(sample.labels)} ${formatValue(count)}`]
}

/**
 * Renders metric families in Prometheus' text exposition format (0.0.4): a `# HELP` and a
 * `# TYPE` line per family, then its samples; histograms as cumulative `_bucket` lines with
 * `le`, then `_sum` and `_count`. A family without samples is left out.
 */
export function renderPrometheus(families: readonly MetricFamily[]): string {
  const lines: string[] = []
  for (const family of families) {
    if (!METRIC_NAME.test(family.name)) throw new Error(`invalid Prometheus metric name "${family.name}"`)
    if (family.samples.length === 0) continue
    lines.push(`# HELP ${family.name} ${escapeHelp(family.help)}`, `# TYPE ${family.name} ${family.type}`)
    for (const sample of family.samples) lines.push(...sampleLines(family.name, sample))
  }
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`
}
