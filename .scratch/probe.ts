import { startBenchStack } from '../test/bench/bench-stack.ts'
import { Reaper } from '../test/bench/reaper.ts'

const reaper = new Reaper()
process.once('exit', () => reaper.reapNow())
const stack = await startBenchStack({ pools: [{ id: 'probe', tokensPerSecond: 0, slots: 4 }], reaper, say: () => {} })
const api = stack.apiUrl
const engine = stack.engineUrls.get('probe') ?? ''
const auth = { Authorization: `Bearer ${stack.apiKey}`, 'Content-Type': 'application/json' }
const body = (model: string, stream: boolean) => JSON.stringify({ model, stream, max_tokens: 1, messages: [{ role: 'user', content: 'hi' }] })

async function p50(name: string, fn: () => Promise<unknown>, n = 200) {
  for (let i = 0; i < 20; i++) await fn()
  const times: number[] = []
  for (let i = 0; i < n; i++) {
    const t = performance.now()
    await fn()
    times.push(performance.now() - t)
  }
  times.sort((a, b) => a - b)
  console.log(`${name.padEnd(40)} p50 ${times[Math.floor(n / 2)]?.toFixed(2)} ms  p90 ${times[Math.floor(n * 0.9)]?.toFixed(2)} ms`)
}
const text = (r: Response) => r.text()
await p50('GET /health', () => fetch(api.replace('/v1', '/health')).then(text))
await p50('GET /v1/models (auth + libSQL)', () => fetch(`${api}/models`, { headers: auth }).then(text))
await p50('POST chat unknown-shape model (auth+body)', () => fetch(`${api}/chat/completions`, { method: 'POST', headers: auth, body: body('bad model!', false) }).then(text))
await p50('POST chat unknown model (DO admit)', () => fetch(`${api}/chat/completions`, { method: 'POST', headers: auth, body: body('nope', false) }).then(text))
await p50('direct engine 1 token, non-streamed', () => fetch(`${engine}/v1/chat/completions`, { method: 'POST', headers: auth, body: body('probe', false) }).then(text))
await p50('direct engine 1 token, streamed', () => fetch(`${engine}/v1/chat/completions`, { method: 'POST', headers: auth, body: body('probe', true) }).then(text))
await p50('relay 1 token, non-streamed', () => fetch(`${api}/chat/completions`, { method: 'POST', headers: auth, body: body('probe', false) }).then(text))
await p50('relay 1 token, streamed', () => fetch(`${api}/chat/completions`, { method: 'POST', headers: auth, body: body('probe', true) }).then(text))
await stack.stop()
process.exit(0)
