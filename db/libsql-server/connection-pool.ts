import { EngineConnection } from './connection.ts'

/**
 * Idle connections kept for the next streams. @libsql/client opens a stream for every execute()
 * and batch(), and the engine releases a closed connection's file handles only when garbage
 * collection finalizes its statements, so opening one per stream piles up descriptors.
 */
export const MAX_IDLE_CONNECTIONS = 16

export class ConnectionPool {
  readonly #file: string
  readonly #idle: EngineConnection[] = []

  constructor(file: string) {
    this.#file = file
  }

  acquire(): EngineConnection {
    return this.#idle.pop() ?? EngineConnection.open(this.#file)
  }

  /** Takes a stream's connection back: kept when clean and there is room, closed otherwise. */
  release(connection: EngineConnection): void {
    let clean = false
    try {
      clean = this.#idle.length < MAX_IDLE_CONNECTIONS && connection.resetForNextStream()
    } finally {
      if (clean) this.#idle.push(connection)
      else connection.close()
    }
  }

  closeAll(): void {
    for (const connection of this.#idle.splice(0)) connection.close()
  }
}
