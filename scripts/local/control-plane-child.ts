/**
 * `npm start`'s control plane, in its own process (see `startControlPlaneProcess`): starts the
 * Worker in workerd as the first IPC message says, answers with its URL, and stops when told to
 * or when `npm start` is gone.
 */
import { createWriteStream } from 'node:fs'
import { startControlPlane } from './control-plane.ts'
import type { LocalControlPlane } from './control-plane.ts'
import { ControlPlaneStart, ControlPlaneStop } from './control-plane-process.ts'
import type { ControlPlaneAnswer } from './control-plane-process.ts'
import { isAddressInUse } from './port-in-use.ts'

/** Resolves once the message is handed to the channel, so an exit right after it loses nothing. */
function answer(message: ControlPlaneAnswer): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send?.(message, undefined, {}, () => resolve())) resolve()
  })
}

// npm start died before it sent anything: nothing to serve.
const exitEarly = () => process.exit(0)
process.once('disconnect', exitEarly)

async function run(options: ControlPlaneStart): Promise<void> {
  const log = createWriteStream(options.logFile, { flags: 'a' })
  let controlPlane: LocalControlPlane
  try {
    controlPlane = await startControlPlane({
      bundlePath: options.bundlePath,
      persistPath: options.persistPath,
      bindings: options.bindings,
      host: options.host,
      port: options.port,
      onLog: ({ message }) => log.write(`${message}\n`),
    })
  } catch (error) {
    await answer({ type: 'failed', message: error instanceof Error ? error.message : String(error), address_in_use: isAddressInUse(error) })
    process.exit(1)
  }
  let stopping = false
  const stop = () => {
    if (stopping) return
    stopping = true
    void controlPlane.stop().finally(() => log.end(() => process.exit(0)))
  }
  process.on('message', (message) => {
    if (ControlPlaneStop.safeParse(message).success) stop()
  })
  process.removeListener('disconnect', exitEarly)
  process.on('disconnect', stop)
  await answer({ type: 'ready', url: controlPlane.url.toString() })
}

process.once('message', (message) => {
  const start = ControlPlaneStart.safeParse(message)
  if (!start.success) {
    void answer({ type: 'failed', message: `expected a start message: ${start.error.message}`, address_in_use: false }).then(() => process.exit(2))
    return
  }
  void run(start.data)
})
