import type { EngineCall } from '../../protocol/index.ts'

/**
 * A request as its engine gets it: the OpenAI route (chat, completions or embeddings) and the
 * body, derived from the dispatch frame so that the split is decided in one place, the protocol.
 */
export type Generation = EngineCall
