import { readFileSync } from 'node:fs'
import { SourceMap } from 'node:module'
import path from 'node:path'
import WebSocket from 'ws'
import { z } from 'zod'

/** V8's CPU profile: what the inspector's `Profiler.stop` answers and `node --cpu-prof` writes. */
export const CpuProfile = z.object({
  nodes: z.array(
    z.object({
      id: z.number(),
      callFrame: z.object({ functionName: z.string(), url: z.string(), lineNumber: z.number(), columnNumber: z.number() }),
      children: z.array(z.number()).optional(),
    }),
  ),
  samples: z.array(z.number()),
  timeDeltas: z.array(z.number()),
})
export type CpuProfile = z.infer<typeof CpuProfile>

/** Sampling interval asked of the profiler, in µs: fine enough for a request of a few ms. */
const SAMPLING_INTERVAL_US = 100
const INSPECTOR_CONNECT_TIMEOUT_MS = 10_000

const ProfilerStopped = z.object({ id: z.number(), result: z.object({ profile: CpuProfile }) })

export interface Profiling {
  /** Stops the profiler and answers the profile of what ran since it started. */
  stop(): Promise<CpuProfile>
}

/** Profiles workerd through its inspector: the Worker named `worker` runs the Worker and every Durable Object. */
export function profileWorkerd(inspectorPort: number, worker: string): Promise<Profiling> {
  return profileThrough(`ws://127.0.0.1:${inspectorPort}/core:user:${worker}`)
}

const InspectorTargets = z.array(z.object({ webSocketDebuggerUrl: z.string() })).min(1)

/** Profiles a Node process started with `--inspect=127.0.0.1:PORT` (the agent). */
export async function profileNode(inspectorPort: number): Promise<Profiling> {
  const targets = InspectorTargets.parse(await (await fetch(`http://127.0.0.1:${inspectorPort}/json/list`)).json())
  return profileThrough(targets[0]?.webSocketDebuggerUrl ?? '')
}

/** Starts V8's sampling profiler through an inspector WebSocket (the Chrome DevTools protocol). */
async function profileThrough(url: string): Promise<Profiling> {
  const ws = new WebSocket(url)
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no inspector answered at ${url}`)), INSPECTOR_CONNECT_TIMEOUT_MS)
    ws.once('open', () => resolve(clearTimeout(timer)))
    ws.once('error', (error) => reject(error))
  })
  let nextId = 0
  const call = (method: string, params: Record<string, unknown> = {}) =>
    new Promise<unknown>((resolve) => {
      const id = ++nextId
      const onMessage = (raw: WebSocket.RawData) => {
        const message: unknown = JSON.parse(raw.toString())
        if (typeof message === 'object' && message !== null && 'id' in message && message.id === id) {
          ws.off('message', onMessage)
          resolve(message)
        }
      }
      ws.on('message', onMessage)
      ws.send(JSON.stringify({ id, method, params }))
    })
  await call('Profiler.enable')
  await call('Profiler.setSamplingInterval', { interval: SAMPLING_INTERVAL_US })
  await call('Profiler.start')
  return {
    async stop() {
      const stopped = ProfilerStopped.parse(await call('Profiler.stop'))
      ws.close()
      return stopped.result.profile
    },
  }
}

const SourceMapFile = z.object({
  file: z.string().default(''),
  version: z.number(),
  sources: z.array(z.string()),
  sourcesContent: z.array(z.string()).default([]),
  names: z.array(z.string()),
  mappings: z.string(),
  sourceRoot: z.string().default(''),
})

/** Frames V8 reports that are not JavaScript; idle time is left out of every total. */
const IDLE = '(idle)'

export interface ProfileGroup {
  group: string
  ms: number
}

/**
 * Self time of a profile by source module: project files by folder (`control-plane/pool`,
 * `node-agent/relay`), dependencies by package (`node_modules/zod`), V8's own frames by name
 * (`(garbage collector)`, `(program)`: native work such as workerd's HTTP and RPC). A bundled
 * Worker's positions are mapped back to its sources through `sourceMapFile`.
 */
export function selfTimeByGroup(profile: CpuProfile, sourceMapFile?: string): ProfileGroup[] {
  const map = sourceMapFile ? new SourceMap(SourceMapFile.parse(JSON.parse(readFileSync(sourceMapFile, 'utf8')))) : null
  const groupOfNode = new Map<number, string>()
  for (const node of profile.nodes) {
    const { functionName, url, lineNumber, columnNumber } = node.callFrame
    if (url === '') {
      groupOfNode.set(node.id, functionName.startsWith('(') ? functionName : '(native)')
      continue
    }
    const source = map ? map.findEntry(lineNumber, columnNumber) : null
    const file = source !== null && 'originalSource' in source && typeof source.originalSource === 'string' ? source.originalSource : url
    groupOfNode.set(node.id, groupOfFile(file))
  }
  const totals = new Map<string, number>()
  profile.samples.forEach((nodeId, i) => {
    const group = groupOfNode.get(nodeId) ?? '(unknown)'
    if (group === IDLE) return
    totals.set(group, (totals.get(group) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1_000)
  })
  return [...totals].map(([group, ms]) => ({ group, ms })).sort((a, b) => b.ms - a.ms)
}

function groupOfFile(file: string): string {
  const modules = file.lastIndexOf('node_modules/')
  if (modules >= 0) {
    const [scopeOrName = '', name = ''] = file.slice(modules + 'node_modules/'.length).split('/')
    return `node_modules/${scopeOrName.startsWith('@') ? `${scopeOrName}/${name}` : scopeOrName}`
  }
  for (const root of ['control-plane/', 'node-agent/', 'protocol/', 'db/']) {
    const at = file.lastIndexOf(root)
    if (at < 0) continue
    const inside = file.slice(at).split('/')
    return inside.length > 2 ? inside.slice(0, 2).join('/') : inside.join('/')
  }
  return file.startsWith('node:') || file.startsWith('cloudflare:') ? (file.split('/')[0] ?? file) : path.basename(file)
}
