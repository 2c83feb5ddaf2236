import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client'
import { AgentReplicaState } from '../../protocol/index.ts'
import type { LinkState } from '../link/link.ts'
import type { LinkMetrics, LinkedAgent } from '../link/linked-agent.ts'

/**
 * The agent's own metrics in a prom-client registry: engine restarts, breaker and replica state,
 * busy slots, frames and bytes sent over the link (task events are the relay), reconnects, and
 * Node's process metrics. Gauges are read from the agent when scraped.
 */
export class AgentMetrics {
  readonly registry = new Registry()
  readonly link: LinkMetrics

  constructor({ agent, linkState }: { agent: LinkedAgent; linkState: () => LinkState }) {
    const registers = [this.registry]
    collectDefaultMetrics({ register: this.registry })
    const restarts = new Counter({
      name: 'llorch_agent_engine_restarts_total',
      help: 'Engine restarts scheduled after a crash.',
      labelNames: ['pool'],
      registers,
    })
    for (const pool of agent.config.pools) {
      restarts.inc({ pool: pool.id }, 0)
      agent.supervisor(pool.id).on('restart', () => restarts.inc({ pool: pool.id }))
    }
    new Gauge({
      name: 'llorch_agent_breaker_open',
      help: '1 while repeated crashes hold the circuit breaker of the pool open (no restarts until a reload).',
      labelNames: ['pool'],
      registers,
      collect() {
        for (const r of agent.replicas()) this.set({ pool: r.pool }, r.breaker_open ? 1 : 0)
      },
    })
    new Gauge({
      name: 'llorch_agent_replica_state',
      help: '1 for the state the replica of the pool is in, 0 for the others.',
      labelNames: ['pool', 'state'],
      registers,
      collect() {
        for (const r of agent.replicas()) for (const state of AgentReplicaState.options) this.set({ pool: r.pool, state }, r.state === state ? 1 : 0)
      },
    })
    new Gauge({
      name: 'llorch_agent_slots_busy',
      help: 'Slots of the replica running a task.',
      labelNames: ['pool'],
      registers,
      collect() {
        for (const r of agent.replicas()) this.set({ pool: r.pool }, r.slots_busy)
      },
    })
    new Gauge({
      name: 'llorch_agent_link_connected',
      help: '1 while the control plane has welcomed this agent on its WebSocket.',
      registers,
      collect() {
        this.set(linkState() === 'welcomed' ? 1 : 0)
      },
    })
    const frames = new Counter({
      name: 'llorch_agent_link_frames_sent_total',
      help: 'Frames sent to the control plane, by type (task_event frames carry relayed tokens).',
      labelNames: ['type'],
      registers,
    })
    const bytes = new Counter({
      name: 'llorch_agent_link_bytes_sent_total',
      help: 'Bytes of the frames sent to the control plane, by type.',
      labelNames: ['type'],
      registers,
    })
    const reconnects = new Counter({
      name: 'llorch_agent_link_reconnects_total',
      help: 'Reconnects to the control plane scheduled after the socket closed.',
      registers,
    })
    this.link = {
      frameSent(type, size) {
        frames.inc({ type })
        bytes.inc({ type }, size)
      },
      reconnectScheduled() {
        reconnects.inc()
      },
    }
  }
}
