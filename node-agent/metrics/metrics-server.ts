import { createServer } from 'node:http'
import type { Log } from '../log/log.ts'
import type { AgentMetrics } from './agent-metrics.ts'

/** The agent's metrics listen on loopback only: nothing on a GPU machine accepts outside connections. */
export const METRICS_HOST = '127.0.0.1'

export interface MetricsServer {
  port: number
  close(): Promise<void>
}

/** Serves `GET /metrics` in Prometheus' text format on `127.0.0.1:port` (0 picks a free port). */
export async function startMetricsServer({ metrics, port, log }: { metrics: AgentMetrics; port: number; log: Log }): Promise<MetricsServer> {
  const server = createServer((request, response) => {
    if (request.method !== 'GET' || request.url !== '/metrics') {
      response.writeHead(404, { 'Content-Type': 'text/plain' }).end('only GET /metrics is served here\n')
      return
    }
    metrics.registry.metrics().then(
      (text) => response.writeHead(200, { 'Content-Type': metrics.registry.contentType }).end(text),
      (error: unknown) => {
        log.error('metrics.render_failed', { err: error instanceof Error ? error.message : String(error) })
        response.writeHead(500, { 'Content-Type': 'text/plain' }).end('metrics failed; see the agent log\n')
      },
    )
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, METRICS_HOST, () => resolve())
  })
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error(`the metrics server did not bind a TCP port (${String(address)})`)
  const bound = address.port
  log.info('agent.metrics_listening', { url: `http://${METRICS_HOST}:${bound}/metrics` })
  return {
    port: bound,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  }
}
