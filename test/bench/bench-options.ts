import { parseArgs } from 'node:util'

export interface BenchOptions {
  /** Requests per path in the sequential and the concurrent scenario. */
  requests: number
  /** Streams in flight at once in the concurrent and the paced scenario. */
  concurrency: number
  /** Tokens per request (`max_tokens`) at maximum engine speed. */
  tokens: number
  /** Tokens per second of the paced engine; 0 leaves the paced scenario out. */
  pacedRate: number
  /** Fewer requests per scenario, so the whole bench finishes in under a minute. */
  quick: boolean
  /** Print only the JSON object. */
  json: boolean
  /** Run the control plane as `llorch serve` does (workerd serve) instead of as `npm start` does (Miniflare). */
  serve: boolean
  /** Folder for CPU profiles: workerd over the one-token relay run, each agent over the whole bench. */
  profile: string | null
}

/** Requests per path in the sequential and concurrent scenarios, without and with `--quick`. */
export const DEFAULT_REQUESTS = 200
export const QUICK_REQUESTS = 30

export const USAGE = `usage: npm run bench -- [options]

Streams chat completions straight to the fake engine (direct) and through the llorch API (relay),
side by side, and prints TTFT, tokens/s per stream, aggregate tokens/s, wall time and errors.

  --requests N      requests per path, sequential and concurrent scenarios (default 200)
  --concurrency C   streams in flight at once (default 8)
  --tokens T        tokens per request at maximum engine speed (default 256)
  --paced-rate R    tokens/s of the paced engine, 0 skips that scenario (default 50)
  --quick           fewer requests everywhere (sequential and concurrent: 30), under a minute
  --serve           the control plane as llorch serve runs it (workerd serve, the home profile)
                    instead of as npm start does (workerd through Miniflare)
  --profile DIR     CPU profiles into DIR: workerd (through its inspector) over the one-token
                    relay run, the agent (node --cpu-prof) over the whole bench; prints where
                    the milliseconds of one request go (Miniflare only, not with --serve)
  --json            print only the JSON object (with npm run --silent bench -- --json,
                    stdout is exactly one JSON line)
  -h, --help        show this help`

export class BenchUsageError extends Error {
  override readonly name = 'BenchUsageError'
}

function integer(flag: string, raw: string, min: number, max: number): number {
  const value = Number(raw)
  if (!/^\d+$/.test(raw) || value < min || value > max) {
    throw new BenchUsageError(`Expected \`--${flag}\` to be an integer from ${min} to ${max}, got \`${raw}\``)
  }
  return value
}

function readFlags(argv: string[]) {
  return parseArgs({
    args: argv,
    options: {
      requests: { type: 'string' },
      concurrency: { type: 'string', default: '8' },
      tokens: { type: 'string', default: '256' },
      'paced-rate': { type: 'string', default: '50' },
      quick: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      serve: { type: 'boolean', default: false },
      profile: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  }).values
}

/** Reads the bench's flags; `null` means help was asked for. Throws `BenchUsageError` naming the flag. */
export function parseBenchOptions(argv: string[]): BenchOptions | null {
  let flags: ReturnType<typeof readFlags>
  try {
    flags = readFlags(argv)
  } catch (error) {
    throw new BenchUsageError(error instanceof Error ? error.message : String(error))
  }
  if (flags.help) return null
  if (flags.profile !== undefined && flags.serve)
    throw new BenchUsageError("Expected `--profile` without `--serve`: only the Miniflare stack opens workerd's inspector")
  return {
    requests: flags.requests === undefined ? (flags.quick ? QUICK_REQUESTS : DEFAULT_REQUESTS) : integer('requests', flags.requests, 1, 100_000),
    concurrency: integer('concurrency', flags.concurrency, 1, 256),
    tokens: integer('tokens', flags.tokens, 1, 1_000_000),
    pacedRate: integer('paced-rate', flags['paced-rate'], 0, 10_000),
    quick: flags.quick,
    json: flags.json,
    serve: flags.serve,
    profile: flags.profile ?? null,
  }
}
