import { createApp } from './app.ts'
import type { Bindings } from './runtime/env.ts'

export { ApiKeyObject } from './api-key-object.ts'
export { BatchObject } from './batch-object.ts'
export { FileObject } from './file-object.ts'
export { ListingObject } from './listing-object.ts'
export { NodeObject } from './node-object.ts'
export { PoolObject } from './pool-object.ts'
export { TaskObject } from './task-object.ts'

const app = createApp()

export default {
  fetch: app.fetch,
} satisfies ExportedHandler<Bindings>
