import { describe, expect, it } from 'vitest'
import { PoolConfig } from '../../../../node-agent/config/schema.ts'
import { engineFor } from '../../../../node-agent/engines/index.ts'
import { runnableWith } from '../../../../node-agent/provision/pool-sources.ts'
import { describeCommand } from '../../../../node-agent/process/engine-process.ts'

const target = { host: '127.0.0.1', port: 8081 }

describe('engine command lines', () => {
  it('builds llama-server with host, port, slots, context, GPU layers and metrics', () => {
    const pool = PoolConfig.parse({
      id: 'qwen',
      engine: 'llamacpp',
      model: '/m/qwen.gguf',
      slots: 4,
      context_size: 16384,
      gpu_layers: 99,
      gpus: [0, 1],
      args: ['--flash-attn'],
      env: { LLAMA_LOG: '1' },
    })
    expect(engineFor(runnableWith(pool)).command(target)).toEqual({
      file: 'llama-server',
      args: [
        '-m',
        '/m/qwen.gguf',
        '--host',
        '127.0.0.1',
        '--port',
        '8081',
        '-np',
        '4',
        '--alias',
        'qwen',
        '--metrics',
        '-c',
        '16384',
        '-ngl',
        '99',
        '--flash-attn',
      ],
      env: { LLAMA_LOG: '1', CUDA_VISIBLE_DEVICES: '0,1' },
    })
  })

  it('builds vllm serve under the pool id, with tensor parallelism across its GPUs', () => {
    const pool = PoolConfig.parse({ id: 'llama-70b', engine: 'vllm', model: 'meta-llama/Llama-3.1-70B-Instruct', gpus: [2, 3], binary: '/opt/vllm/bin/vllm' })
    const engine = engineFor(runnableWith(pool))
    expect(engine.command(target)).toEqual({
      file: '/opt/vllm/bin/vllm',
      args: [
        'serve',
        'meta-llama/Llama-3.1-70B-Instruct',
        '--host',
        '127.0.0.1',
        '--port',
        '8081',
        '--served-model-name',
        'llama-70b',
        '--tensor-parallel-size',
        '2',
      ],
      env: { CUDA_VISIBLE_DEVICES: '2,3' },
    })
    expect(engine.modelName).toBe('llama-70b')
  })

  it('leaves tensor parallelism to args that set it', () => {
    const pool = PoolConfig.parse({ id: 'v', engine: 'vllm', model: 'm', gpus: [0, 1], args: ['--tensor-parallel-size=1'] })
    expect(engineFor(runnableWith(pool)).command(target)?.args).not.toContain('--tensor-parallel-size')
  })

  it('starts ollama serve on OLLAMA_HOST only when asked to, and always sends the Ollama tag as model', () => {
    const own = engineFor(runnableWith(PoolConfig.parse({ id: 'q', engine: 'ollama', model: 'qwen2.5:7b', spawn: true, port: 'auto', slots: 3 })))
    expect(own.spawns).toBe(true)
    expect(own.command(target)).toEqual({ file: 'ollama', args: ['serve'], env: { OLLAMA_HOST: '127.0.0.1:8081', OLLAMA_NUM_PARALLEL: '3' } })
    const shared = engineFor(runnableWith(PoolConfig.parse({ id: 'q', engine: 'ollama', model: 'qwen2.5:7b' })))
    expect(shared.spawns).toBe(false)
    expect(shared.command(target)).toBeNull()
    expect(shared.modelName).toBe('qwen2.5:7b')
  })

  it('starts nothing for an openai pool and uses its model name when given', () => {
    const engine = engineFor(runnableWith(PoolConfig.parse({ id: 'gpt', engine: 'openai', port: 8000, model: 'upstream-name' })))
    expect(engine.command(target)).toBeNull()
    expect(engine.modelName).toBe('upstream-name')
    expect(engine.healthPath).toBe('/v1/models')
  })

  it('fills the placeholders of a command pool and appends its args', () => {
    const pool = PoolConfig.parse({
      id: 'c',
      engine: 'command',
      command: ['my-server', '--listen={host}:{port}', '--model', '{model}', '-n', '{slots}', '--name={pool}'],
      model: '/m',
      slots: 2,
      args: ['--x'],
    })
    expect(engineFor(runnableWith(pool)).command(target)).toEqual({
      file: 'my-server',
      args: ['--listen=127.0.0.1:8081', '--model', '/m', '-n', '2', '--name=c', '--x'],
      env: {},
    })
  })
})

describe('engine command shown in logs and failure reports', () => {
  it('masks the values of flags that look secret and quotes what a shell would need quoted', () => {
    expect(describeCommand('vllm', ['serve', 'm', '--api-key', 'sk-123', '--hf-token=hf_abc', '--port', '8000', '--chat-template', 'a b'])).toBe(
      "vllm serve m --api-key '***' '--hf-token=***' --port 8000 --chat-template 'a b'",
    )
  })
})
