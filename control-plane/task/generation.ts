import type { Dispatch } from '../../protocol/index.ts'

/**
 * A generation request as its engine gets it: the OpenAI route and the body, derived from the
 * dispatch frame so that the chat/completions split is decided in one place, the protocol.
 */
export type Generation = { [E in Dispatch['endpoint']]: Pick<Extract<Dispatch, { endpoint: E }>, 'endpoint' | 'body'> }[Dispatch['endpoint']]
