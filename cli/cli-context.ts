import type { Command } from 'commander'
import { CliError, EXIT_USAGE, resolveConnection } from './admin-client.ts'
import type { Connection } from './admin-client.ts'

/** What every command needs: where the control plane is, and how to print. */
export interface CliContext {
  connection(): Connection
  /** `--json` prints `data`; otherwise the human form. */
  print(data: unknown, human: () => string): void
  json(): boolean
}

export function cliContext(program: Command): CliContext {
  const options = () => program.opts<{ url?: string; adminToken?: string; json?: boolean }>()
  return {
    connection: () => resolveConnection(options()),
    json: () => options().json === true,
    print(data, human) {
      process.stdout.write(options().json ? `${JSON.stringify(data, null, 2)}\n` : `${human()}\n`)
    },
  }
}

/** A non-negative integer option, or a usage error naming the flag. */
export function integer(flag: string) {
  return (value: string): number => {
    const n = Number(value)
    if (!Number.isInteger(n) || n < 0) throw new CliError(`${flag}: expected a non-negative integer, got "${value}"`, EXIT_USAGE)
    return n
  }
}

/** The options key commander gives a flag: `idle-drain-ms` is `idleDrainMs`. */
export const camel = (flag: string) => flag.replace(/-(\w)/g, (_, c: string) => c.toUpperCase())
