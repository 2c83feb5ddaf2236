import { refusal } from '../../protocol/index.ts'
import type { AdmissionRefusal } from './grant.ts'

/** Every refusal a pool gives, each worded once: the client reads the message, a program the code. */
export const poolRefusals = {
  modelNotFound: (poolId: string): AdmissionRefusal =>
    refusal('model_not_found', `the model "${poolId}" does not exist; GET /v1/models lists the served ones`, { param: 'model' }),
  registryUnavailable: (poolId: string): AdmissionRefusal =>
    refusal('registry_unavailable', `the registry cannot be reached to look up pool "${poolId}"; try again shortly`),
  noReplicaRegistered: (poolId: string): AdmissionRefusal =>
    refusal('no_replica', `no replica is registered for pool "${poolId}": start an agent whose config serves it`),
  noReplicaLeft: (poolId: string): AdmissionRefusal =>
    refusal('no_replica', `no replica of pool "${poolId}" is left: every node that served it was revoked; see GET /v2/nodes`),
  everyReplicaDown: (poolId: string): AdmissionRefusal =>
    refusal('no_replica', `every replica of pool "${poolId}" is failed or lost; see GET /v2/pools/${poolId}`),
  noReplicaElsewhere: (poolId: string, nodeId: string): AdmissionRefusal =>
    refusal('no_replica', `no replica of pool "${poolId}" but the one on node ${nodeId} can take the task`),
  cannotStart: (message: string): AdmissionRefusal => refusal('no_replica', message),
  queueFull: (poolId: string, capacity: number, retryAfterSeconds: number): AdmissionRefusal =>
    refusal('queue_full', `pool "${poolId}" queue is full (${capacity} waiting)`, { retryAfterSeconds }),
  queueTimeout: (poolId: string): AdmissionRefusal => refusal('queue_timeout', `no slot became free in pool "${poolId}" before the task's wait deadline`),
  cancelledWhileQueued: (taskId: string): AdmissionRefusal => refusal('cancelled', `task ${taskId} was cancelled while queued`),
  noLongerQueued: (poolId: string, taskId: string): AdmissionRefusal => refusal('task_expired', `task ${taskId} is no longer queued in pool "${poolId}"`),
}
