import { z } from 'zod'
import { GpuInfo } from '../../protocol/index.ts'
import type { NodeMetrics } from '../../protocol/index.ts'
import { MetricStore } from '../storage/metric-store.ts'
import { sqlRow } from '../storage/sql-rows.ts'

type Counter = 'connections' | 'heartbeats'

const GpusRow = z.object({ json: z.string() })

/**
 * What a NodeObject counts (agent connections, heartbeats) and the GPUs its agent last
 * reported, in the object's SQLite so they outlive eviction.
 */
export class NodeMetricsRecorder {
  readonly #sql: SqlStorage
  readonly #store: MetricStore

  constructor(sql: SqlStorage) {
    this.#sql = sql
    this.#store = new MetricStore(sql)
    sql.exec('CREATE TABLE IF NOT EXISTS metric_gpus (id INTEGER PRIMARY KEY CHECK (id = 1), json TEXT NOT NULL)')
  }

  /** Written at once: a node counts a connection or a heartbeat every few seconds, not per task. */
  count(name: Counter): void {
    this.#store.count(name)
    this.#store.flush()
  }

  gpus(gpus: readonly GpuInfo[]): void {
    this.#sql.exec('INSERT INTO metric_gpus (id, json) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET json = excluded.json', JSON.stringify(gpus))
  }

  snapshot(
    node: string,
    live: { online: boolean; lastHeartbeatAt: number | undefined; streamingTasks: number; downloads: NodeMetrics['downloads']; now: number },
  ): NodeMetrics {
    const stored = sqlRow(this.#sql, GpusRow, 'SELECT json FROM metric_gpus WHERE id = 1')
    return {
      node,
      online: live.online,
      heartbeat_age_seconds: live.lastHeartbeatAt === undefined ? null : Math.max(0, live.now - live.lastHeartbeatAt) / 1000,
      connections: this.#store.counter('connections'),
      heartbeats: this.#store.counter('heartbeats'),
      streaming_tasks: live.streamingTasks,
      gpus: stored ? z.array(GpuInfo).parse(JSON.parse(stored.json)) : [],
      downloads: live.online ? live.downloads : [],
    }
  }
}
