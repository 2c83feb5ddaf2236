import type { GpuInfo } from '../../protocol/index.ts'
import { DETECTED_ENGINES } from './detect-engines.ts'
import type { DetectableEngine, FoundEngine } from './detect-engines.ts'

/** Written when no control-plane URL is given: doctor then says to change it. */
export const PLACEHOLDER_CONTROL_PLANE_URL = 'https://llorch.example.workers.dev'

export interface TemplateOptions {
  controlPlaneUrl: string | null
  tokenFile: string
  stateDir: string
  engines: FoundEngine[]
  gpus: GpuInfo[]
}

/** A YAML scalar: JSON's double-quoted strings are valid YAML. */
const quote = (value: string) => JSON.stringify(value)

/** One pool per engine kind, with the fields worth changing commented. */
const POOLS: Record<DetectableEngine, (binary: string, eager: boolean) => string[]> = {
  llamacpp: (binary, eager) => [
    '  - id: qwen2.5-7b-instruct            # the public model name clients ask for',
    '    engine: llamacpp',
    `    binary: ${quote(binary)}`,
    '    model: /srv/models/qwen2.5-7b-instruct-q4_k_m.gguf   # CHANGE: the GGUF file to serve',
    '    slots: 4                           # -np 4: requests served at once',
    '    # gpus: [0]                        # CUDA_VISIBLE_DEVICES; all GPUs when left out',
    '    # context_size: 32768              # -c, shared by the slots',
    '    # gpu_layers: 999                  # -ngl: layers on the GPU',
    ...(eager ? [] : ['    preload: on-demand                 # started when a request for it arrives']),
  ],
  vllm: (binary, eager) => [
    '  - id: llama-3.1-8b-instruct',
    '    engine: vllm',
    `    binary: ${quote(binary)}`,
    '    model: meta-llama/Llama-3.1-8B-Instruct   # CHANGE: a Hugging Face id or a model directory',
    '    slots: 16',
    '    # gpus: [0, 1]                     # two GPUs: tensor parallel 2',
    '    # env: { HF_HOME: /srv/huggingface }',
    ...(eager ? [] : ['    preload: on-demand                 # started when a request for it arrives']),
  ],
  ollama: (binary, eager) => [
    '  - id: llama3.2:3b',
    '    engine: ollama',
    '    model: llama3.2:3b                 # CHANGE: a tag you pulled (ollama pull llama3.2:3b)',
    '    slots: 2',
    '    # The Ollama already running on port 11434 serves it; to run its own `ollama serve` instead:',
    '    # spawn: true',
    `    # binary: ${quote(binary)}`,
    ...(eager ? [] : ['    preload: on-demand                 # loaded when a request for it arrives']),
  ],
}

function gpuLines(gpus: GpuInfo[]): string[] {
  if (gpus.length === 0) return ['# GPUs: nvidia-smi lists none (a CPU-only node is fine for CPU engines).']
  return ['# GPUs (nvidia-smi):', ...gpus.map((g) => `#   ${g.index}: ${g.name}, ${g.memory_total_mib} MiB`)]
}

/**
 * The config `llorch-agent init` writes: the control plane, the token file, the state dir and a
 * pool for each engine found on PATH (the first starts with the agent, the others on demand),
 * every field worth changing explained in a comment.
 */
export function renderConfigTemplate(options: TemplateOptions): string {
  const found = options.engines.map((e) => `${e.engine} (${e.binary})`).join(', ')
  const programs = DETECTED_ENGINES.map((e) => e.program).join(', ')
  const header = [
    '# llorch-agent config, written by `llorch-agent init`. Check it with `llorch-agent doctor`.',
    `# Engines found on PATH: ${found || `none of ${programs}`}.`,
    ...(options.engines.length > 1 ? ['# Delete the pools you do not want; each runs one engine on this machine.'] : []),
    ...gpuLines(options.gpus),
    '',
    '# The control plane: the URL `wrangler deploy` printed (https://… or wss://…).',
    options.controlPlaneUrl === null
      ? `control_plane_url: ${quote(PLACEHOLDER_CONTROL_PLANE_URL)}   # CHANGE: your control plane`
      : `control_plane_url: ${quote(options.controlPlaneUrl)}`,
    '# The node token from POST /v2/nodes, alone in this file: mode 0600, owned by the service user.',
    `node_token_file: ${quote(options.tokenFile)}`,
    '# PID files, engine logs (logs/<pool>.log) and status.json.',
    `state_dir: ${quote(options.stateDir)}`,
    '# log_level: info                    # debug, info, warn, error',
    '',
    '# One engine replica per pool. Field reference: README, "Config reference".',
    'pools:',
  ]
  const pools =
    options.engines.length === 0
      ? ['  # No engine was found on PATH: install llama.cpp, or set binary to its full path.', ...POOLS.llamacpp('llama-server', true)]
      : options.engines.flatMap((e, i) => [`  # ${e.engine}: found ${e.binary}`, ...POOLS[e.engine](e.binary, i === 0)])
  return `${[...header, ...pools].join('\n')}\n`
}
