/**
 * One event per line: a dotted name plus the identifying ids. Never tokens or credentials.
 * Workers Logs indexes the object's fields.
 */
export function logEvent(event: string, fields: Record<string, unknown> = {}): void {
  console.log({ event, ...fields })
}

export function logError(event: string, fields: Record<string, unknown> = {}): void {
  console.error({ event, ...fields })
}
