/**
 * One event per line: a JSON object with the time, the level, a dotted event name and the
 * identifying ids (`request_id`, `task`, `pool`, `node`, `key`). Never tokens or credentials.
 * Workers Logs parses a logged JSON string into fields; a terminal shows it as one line.
 */
export function logEvent(event: string, fields: Record<string, unknown> = {}): void {
  console.log(logLine('info', event, fields))
}

export function logError(event: string, fields: Record<string, unknown> = {}): void {
  console.error(logLine('error', event, fields))
}

function logLine(level: 'info' | 'error', event: string, fields: Record<string, unknown>): string {
  return JSON.stringify({ time: new Date().toISOString(), level, event, ...fields })
}
