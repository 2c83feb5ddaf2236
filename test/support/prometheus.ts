import parsePrometheusTextFormat from 'parse-prometheus-text-format'
import { z } from 'zod'

const Family = z.object({
  name: z.string(),
  help: z.string(),
  type: z.enum(['COUNTER', 'GAUGE', 'HISTOGRAM', 'SUMMARY', 'UNTYPED']),
  metrics: z.array(
    z.object({
      value: z.string().optional(),
      labels: z.record(z.string(), z.string()).optional(),
      buckets: z.record(z.string(), z.string()).optional(),
      count: z.string().optional(),
      sum: z.string().optional(),
    }),
  ),
})
export type PrometheusFamily = z.infer<typeof Family>

/** Parses Prometheus text with `parse-prometheus-text-format`, which throws on a malformed line. */
export function parsePrometheus(text: string): PrometheusFamily[] {
  return z.array(Family).parse(parsePrometheusTextFormat(text))
}

export function family(families: readonly PrometheusFamily[], name: string): PrometheusFamily {
  const found = families.find((f) => f.name === name)
  if (!found) throw new Error(`no metric family ${name} in: ${families.map((f) => f.name).join(', ')}`)
  return found
}

/** The value of the counter or gauge sample whose labels include `labels`; undefined when none matches. */
export function sampleValue(families: readonly PrometheusFamily[], name: string, labels: Record<string, string> = {}): number | undefined {
  const sample = family(families, name).metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))
  return sample?.value === undefined ? undefined : Number(sample.value)
}

/**
 * Cumulative bucket counts of a histogram by `le`. The parser merges the buckets of every label
 * set into one and drops labelled `_sum`/`_count` lines, so this is only meaningful when the
 * scrape holds one series of the histogram (one pool).
 */
export function histogramBuckets(families: readonly PrometheusFamily[], name: string): Record<string, number> {
  const buckets = family(families, name).metrics[0]?.buckets ?? {}
  return Object.fromEntries(Object.entries(buckets).map(([le, n]) => [le, Number(n)]))
}
