import { DurableObject } from 'cloudflare:workers'
export class PoolObject extends DurableObject<Env> {}
export class NodeObject extends DurableObject<Env> {}
export default { fetch: () => new Response('ok') } satisfies ExportedHandler<Env>
