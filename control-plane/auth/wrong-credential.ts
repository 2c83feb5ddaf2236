import type { ApiKeyScope } from '../../protocol/index.ts'
import { LlorchError } from '../../protocol/index.ts'

/** What a route takes: an API key scope (`/v1` inference, the admin API), or a node token (agents). */
export type CredentialWanted = ApiKeyScope | 'agent'
/** What a refused request carried, recognised by shape or, for the admin token, by value. */
export type CredentialPresented = 'admin_token' | 'node' | 'api_key' | 'unrecognised'

/**
 * The refusal for each credential sent to a route that does not take its kind: it names what
 * was sent and what the route wants, and how to get that.
 */
const MESSAGES = {
  inference: {
    admin_token: 'the admin token is not an inference credential; create an API key with POST /v2/api-keys (scopes ["inference"]) and send that',
    node: 'a node token is not an inference credential (node tokens are valid only on /v2/agent/connect); create an API key with POST /v2/api-keys',
    unrecognised: 'invalid credential: inference (/v1, /v2/tasks) takes an API key (llk.…) with the "inference" scope, created with POST /v2/api-keys',
  },
  admin: {
    node: 'a node token is not an admin credential (node tokens are valid only on /v2/agent/connect); send the admin token or an API key with the "admin" scope',
    unrecognised: 'invalid credential: the admin API takes the admin token or an API key (llk.…) with the "admin" scope',
  },
  agent: {
    admin_token: 'the admin token is not a node token; agents connect with the node token that POST /v2/nodes prints',
    api_key: 'an API key is not a node token; agents connect with the node token that POST /v2/nodes prints',
    unrecognised: 'invalid credential: agents connect with a node token (lln.…), printed once by POST /v2/nodes',
  },
} as const satisfies { [W in CredentialWanted]: { unrecognised: string } & Partial<Record<CredentialPresented, string>> }

const MISSING = {
  inference: 'missing credential: send "Authorization: Bearer <key>"',
  admin: 'missing credential: send "Authorization: Bearer <admin token or API key>"',
  agent: 'missing credential: agents send "Authorization: Bearer <node token>" (POST /v2/nodes prints one)',
} as const satisfies Record<CredentialWanted, string>

/** 401 for a request without a credential. */
export function missingCredential(wanted: CredentialWanted): LlorchError {
  return new LlorchError('unauthorized', MISSING[wanted])
}

/** 401 for a credential of a kind the route does not take (or not one at all). */
export function wrongCredential(wanted: CredentialWanted, presented: CredentialPresented): LlorchError {
  const messages: Partial<Record<CredentialPresented, string>> & { unrecognised: string } = MESSAGES[wanted]
  return new LlorchError('unauthorized', messages[presented] ?? messages.unrecognised)
}

const MISSING_SCOPE = {
  inference: 'this API key lacks the "inference" scope; create one with scopes ["inference"] (POST /v2/api-keys)',
  admin: 'this API key lacks the "admin" scope; send the admin token or a key created with scopes ["admin"]',
} as const satisfies Record<ApiKeyScope, string>

/** 403 for a valid API key without the scope the route needs. */
export function missingScope(scope: ApiKeyScope): LlorchError {
  return new LlorchError('forbidden', MISSING_SCOPE[scope])
}
