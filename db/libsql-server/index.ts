export { startLibsqlServer, isLoopback, CLOSE_GRACE_MS, type LibsqlServer, type LibsqlServerOptions } from './server.ts'
export { STREAM_IDLE_TIMEOUT_MS, MAX_OPEN_STREAMS } from './streams.ts'
export { BUSY_RETRY_LIMIT_MS } from './busy-retry.ts'
export { jsonLineLog, silentLog, type Log } from './log.ts'
