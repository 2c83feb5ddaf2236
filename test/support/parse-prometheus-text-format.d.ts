/** The package ships no types; what it returns is checked with zod in `prometheus.ts`. */
declare module 'parse-prometheus-text-format' {
  export default function parsePrometheusTextFormat(text: string): unknown
}
