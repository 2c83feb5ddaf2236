import { relay } from '../node-agent/relay/relay.ts'
import { startFakeEngine } from '../test/support/processes.ts'

const pids: number[] = []
const engine = await startFakeEngine(['--tokens', '1'], (pid) => pids.push(pid))
const endpoint = { pool: 'p', baseUrl: engine.baseUrl, modelName: 'm' }
const body = { model: 'm', messages: [{ role: 'user' as const, content: 'hi' }], max_tokens: 1 }
async function once() {
  const t0 = performance.now()
  let first = 0
  for await (const e of relay({ endpoint, route: 'chat', body })) {
    if (e.kind === 'tokens' && first === 0) first = performance.now() - t0
  }
  return [first, performance.now() - t0]
}
for (let i = 0; i < 50; i++) await once()
const firsts: number[] = [], totals: number[] = []
for (let i = 0; i < 300; i++) { const [f, t] = await once(); firsts.push(f ?? 0); totals.push(t ?? 0) }
firsts.sort((a, b) => a - b); totals.sort((a, b) => a - b)
console.log(`agent relay alone: first text p50 ${firsts[150]?.toFixed(2)} ms, whole p50 ${totals[150]?.toFixed(2)} ms`)
const t = performance.now()
for (let i = 0; i < 300; i++) await fetch(`${engine.baseUrl}/v1/chat/completions`, { method: 'POST', body: JSON.stringify({ ...body, stream: true }), headers: { 'content-type': 'application/json' } }).then((r) => r.text())
console.log(`fetch direct streamed avg ${((performance.now() - t) / 300).toFixed(2)} ms`)
for (const pid of pids) process.kill(pid, 'SIGKILL')
process.exit(0)
