import { hostname } from 'node:os'
import { pino } from 'pino'
import type { DestinationStream } from 'pino'

/** Fields carried by one log line: identifying ids, counts, durations. Never tokens or secrets. */
export type LogFields = Record<string, unknown>

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent'

/**
 * JSON-lines logger: one event per line, a dotted name plus fields.
 *
 * @example
 * log.info('replica.ready', { pool, pid, ms })
 */
export interface Log {
  debug(event: string, fields?: LogFields): void
  info(event: string, fields?: LogFields): void
  warn(event: string, fields?: LogFields): void
  error(event: string, fields?: LogFields): void
  /** A logger whose lines all carry `bindings` (e.g. `{ pool }`). */
  child(bindings: LogFields): Log
}

type PinoLogger = ReturnType<typeof pino>

function wrap(logger: PinoLogger): Log {
  return {
    debug: (event, fields = {}) => logger.debug(fields, event),
    info: (event, fields = {}) => logger.info(fields, event),
    warn: (event, fields = {}) => logger.warn(fields, event),
    error: (event, fields = {}) => logger.error(fields, event),
    child: (bindings) => wrap(logger.child(bindings)),
  }
}

export interface CreateLogOptions {
  level?: LogLevel
  /** Where lines go; stdout when left out. Tests pass a stream to read events back. */
  destination?: DestinationStream
}

/** Creates the agent's logger; the event name is written under `event`. */
export function createLog({ level = 'info', destination }: CreateLogOptions = {}): Log {
  const options = {
    level,
    messageKey: 'event',
    base: { host: hostname() },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  }
  return wrap(destination ? pino(options, destination) : pino(options))
}

/** Drops every line; the default for modules used without a logger. */
export const silentLog: Log = createLog({ level: 'silent' })
