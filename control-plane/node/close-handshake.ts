/** Close codes a peer may report but no endpoint may send (RFC 6455 §7.4.1). */
const UNSENDABLE_CLOSE_CODES: ReadonlySet<number> = new Set([1005, 1006, 1015])
const NORMAL_CLOSE_CODE = 1000

/**
 * Answers the peer's Close frame with one of ours. A hibernatable socket does not do it by
 * itself; without it the agent waits out its close timeout (10 s) before it can exit.
 */
export function answerClose(ws: WebSocket, code: number, reason: string): void {
  ws.close(UNSENDABLE_CLOSE_CODES.has(code) ? NORMAL_CLOSE_CODE : code, reason)
}
