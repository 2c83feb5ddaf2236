import type { EngineCall, PoolCommand } from '../../protocol/index.ts'
import type { Bindings } from '../runtime/env.ts'
import { logError } from '../runtime/log.ts'
import type { CommandResult } from './command-result.ts'
import { dispatchOf } from './dispatch-frame.ts'
import type { Grant } from './grant.ts'

/**
 * A pool's calls to the NodeObjects of its replicas. Dispatches and stops go out without holding
 * up the pool (kept alive with `background`); their failures are logged, never thrown.
 */
export class NodeCalls {
  readonly #env: Bindings
  readonly #poolId: string
  readonly #background: (promise: Promise<unknown>) => void

  constructor(env: Bindings, { poolId, background }: { poolId: string; background: (promise: Promise<unknown>) => void }) {
    this.#env = env
    this.#poolId = poolId
    this.#background = background
  }

  command(nodeId: string, command: PoolCommand, deadlineMs: number | undefined): Promise<CommandResult> {
    return this.#node(nodeId).command({ command, pool: this.#poolId, deadlineMs })
  }

  /**
   * Sends a grant's dispatch to its node: the Worker claims the events there meanwhile, and either
   * call may come first. A dispatch that fails leaves the Worker's claim without one, which ends
   * in `node_lost` and a failover. With `preempted`, the same call first stops that batch line,
   * so the agent frees its slot before the dispatch comes.
   */
  dispatch(grant: Grant, generation: EngineCall, preempted: string | undefined): void {
    const sent = this.#node(grant.nodeId)
      .dispatch(grant, dispatchOf(grant, generation), preempted)
      .catch((error: unknown) => logError('pool.dispatch_failed', { pool: this.#poolId, task: grant.taskId, node: grant.nodeId, error: String(error) }))
    this.#background(sent)
  }

  /** Stops a preempted batch line on its node; resolves once the node has told its agent (or failed to). */
  preempt(nodeId: string, taskId: string): Promise<void> {
    const told = this.#node(nodeId)
      .preempt(taskId)
      .catch((error: unknown) => logError('pool.preempt_failed', { pool: this.#poolId, task: taskId, node: nodeId, error: String(error) }))
    this.#background(told)
    return told
  }

  #node(nodeId: string) {
    return this.#env.NODES.getByName(nodeId)
  }
}
