/** One event per line: a dotted name and its fields. Never pass tokens or SQL arguments. */
export type Log = (event: string, fields?: Record<string, unknown>) => void

export const silentLog: Log = () => {}

/** JSON lines on stdout, for the CLI. */
export const jsonLineLog: Log = (event, fields = {}) => {
  console.log(JSON.stringify({ time: new Date().toISOString(), event, ...fields }))
}
