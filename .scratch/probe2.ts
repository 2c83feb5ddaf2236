import { readdirSync, readFileSync } from 'node:fs'
import { startBenchStack } from '../test/bench/bench-stack.ts'
import { Reaper } from '../test/bench/reaper.ts'
const reaper = new Reaper()
process.once('exit', () => reaper.reapNow())
const stack = await startBenchStack({ pools: [{ id: 'probe', tokensPerSecond: 0, slots: 4 }], reaper, say: () => {} })
const auth = { Authorization: `Bearer ${stack.apiKey}`, 'Content-Type': 'application/json' }
const body = JSON.stringify({ model: 'probe', stream: true, max_tokens: 1, messages: [{ role: 'user', content: 'hi' }] })
const times: number[] = []
for (let i = 0; i < 200; i++) { const t = performance.now(); await fetch(`${stack.apiUrl}/chat/completions`, { method: 'POST', headers: auth, body }).then((r) => r.text()); times.push(performance.now() - t) }
times.sort((a, b) => a - b)
console.log('client p50', times[100]?.toFixed(2))
const dir = readdirSync('/tmp').filter((d) => d.startsWith('llorch-bench-')).map((d) => `/tmp/${d}/worker.log`)
const lines = dir.flatMap((f) => { try { return readFileSync(f, 'utf8').split('\n') } catch { return [] } }).filter((l) => l.includes('PROBE')).slice(-150)
const cols: Record<string, number[]> = {}
for (const l of lines) for (const m of l.matchAll(/(\w+)=(\d+)/g)) (cols[m[1] ?? ''] ??= []).push(Number(m[2]))
for (const [k, v] of Object.entries(cols)) { v.sort((a, b) => a - b); console.log(k, 'p50', v[Math.floor(v.length / 2)], 'avg', (v.reduce((a, b) => a + b, 0) / v.length).toFixed(2)) }
await stack.stop()
process.exit(0)
