import type { TaskCost } from './report.ts'

/**
 * Cloudflare's published prices on the Workers Paid plan, beyond the monthly allowances (which
 * are left out: at a million requests and up they are the small part).
 * Workers: https://developers.cloudflare.com/workers/platform/pricing/ (Standard usage model).
 */
export const WORKER_REQUEST_USD_PER_MILLION = 0.3
export const WORKER_CPU_USD_PER_MILLION_MS = 0.02
/**
 * Durable Objects: https://developers.cloudflare.com/durable-objects/platform/pricing/ — every RPC
 * call, fetch and alarm is a request; incoming WebSocket messages are billed at 20 to 1.
 */
export const DURABLE_OBJECT_REQUEST_USD_PER_MILLION = 0.15
export const WEBSOCKET_MESSAGES_PER_BILLED_REQUEST = 20
/** SQLite-backed Durable Object storage, same page: rows written. */
export const STORAGE_ROW_WRITE_USD_PER_MILLION = 1.0

export interface DollarsPerMillion {
  workerRequests: number
  /** The CPU of the whole local workerd (the Worker and every object) per task: an upper bound of the Worker's own. */
  workerCpu: number
  durableObjectRequests: number
  storageWrites: number
  total: number
}

/**
 * What a million relayed requests cost at those prices, from what one cost on the bench: one
 * Worker request each, its CPU, the objects' entry points (agent frames at the WebSocket rate)
 * and their storage writes (one row each, at least). Durable Object duration (GB-s while an
 * object is active) is not counted: the bench cannot see it.
 */
export function dollarsPerMillion(cost: TaskCost): DollarsPerMillion {
  const objectRequests = cost.durableObjectCalls - cost.agentFrames + cost.agentFrames / WEBSOCKET_MESSAGES_PER_BILLED_REQUEST
  const parts = {
    workerRequests: WORKER_REQUEST_USD_PER_MILLION,
    workerCpu: cost.workerdCpuMs * WORKER_CPU_USD_PER_MILLION_MS,
    durableObjectRequests: objectRequests * DURABLE_OBJECT_REQUEST_USD_PER_MILLION,
    storageWrites: cost.storageWrites * STORAGE_ROW_WRITE_USD_PER_MILLION,
  }
  const round = (usd: number) => Number(usd.toFixed(3))
  return {
    workerRequests: round(parts.workerRequests),
    workerCpu: round(parts.workerCpu),
    durableObjectRequests: round(parts.durableObjectRequests),
    storageWrites: round(parts.storageWrites),
    total: round(parts.workerRequests + parts.workerCpu + parts.durableObjectRequests + parts.storageWrites),
  }
}
