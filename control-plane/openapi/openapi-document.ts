import { z } from 'zod'
import { ErrorCode, LLORCH_VERSION, NativeErrorBody, OpenAIErrorBody } from '../../protocol/index.ts'
import { isOpenAIPath } from '../middleware/error-response.ts'
import { API_OPERATIONS } from './api-operations.ts'
import type { Access, ApiOperation, ResponseSpec } from './api-operations.ts'

type JsonSchema = Record<string, unknown>

/** zod → JSON Schema 2020-12, the dialect of OpenAPI 3.1; `io: 'input'` for what clients send. */
function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { target: 'draft-2020-12', io, unrepresentable: 'any' })
  return rest
}

const SECURITY: Record<Access, Array<Record<string, string[]>>> = {
  public: [],
  admin: [{ adminToken: [] }, { apiKey: [] }],
  inference: [{ apiKey: [] }],
  api_key: [{ apiKey: [] }],
  node: [{ nodeToken: [] }],
}

function errorResponse(path: string, description: string) {
  return { description, content: { 'application/json': { schema: { $ref: `#/components/schemas/${isOpenAIPath(path) ? 'OpenAIError' : 'NativeError'}` } } } }
}

/** The error answers an operation can give, from what it takes and who may call it. */
function errorResponses(op: ApiOperation): Record<string, unknown> {
  const errors: Record<string, unknown> = {}
  const add = (status: number, description: string) => (errors[status] = errorResponse(op.path, description))
  if (op.body || op.query || op.path.startsWith('/v1/')) add(400, 'Invalid input; the message (and `param` on /v1) names the field')
  if (op.access !== 'public') add(401, 'Missing or unknown credential')
  if (op.access === 'admin' || op.access === 'inference') add(403, 'A valid API key without the needed scope')
  if (op.path.includes('{') || op.path.startsWith('/v1/')) add(404, 'Unknown id or model')
  if (op.body) add(413, 'Body larger than the limit')
  if (op.path === '/v1/chat/completions' || op.path === '/v1/completions') {
    add(429, 'Queue full; see Retry-After')
    add(504, 'No slot became free before the wait deadline')
  }
  if (op.access !== 'public') add(503, 'No replica can serve, or the registry is unreachable')
  return errors
}

function responseOf(spec: ResponseSpec) {
  if (!spec.content) return { description: spec.description }
  const content = Object.fromEntries(Object.entries(spec.content).map(([type, schema]) => [type, { schema: jsonSchema(schema, 'output') }]))
  return { description: spec.description, content }
}

function parametersOf(op: ApiOperation): unknown[] {
  const inPath = [...op.path.matchAll(/\{(\w+)\}/g)].map((m) => m[1] ?? '')
  const path = inPath.map((name) => {
    const enumSchema = op.pathEnums?.[name]
    return { name, in: 'path', required: true, schema: enumSchema ? jsonSchema(enumSchema, 'input') : { type: 'string' } }
  })
  const query = Object.entries(op.query?.shape ?? {}).map(([name, schema]) => ({
    name,
    in: 'query',
    required: !schema.safeParse(undefined).success,
    schema: jsonSchema(schema, 'input'),
  }))
  return [...path, ...query]
}

function operationOf(op: ApiOperation) {
  const responses: Record<string, unknown> = {}
  for (const [status, spec] of Object.entries(op.responses)) responses[status] = responseOf(spec)
  const parameters = parametersOf(op)
  return {
    tags: [op.tag],
    summary: op.summary,
    operationId: `${op.method}${op.path.replaceAll(/[^A-Za-z0-9]+(.)?/g, (_, c: string | undefined) => (c ?? '').toUpperCase())}`,
    security: SECURITY[op.access],
    ...(parameters.length > 0 ? { parameters } : {}),
    ...(op.body
      ? {
          requestBody: {
            required: op.body.required,
            content: { [op.body.contentType ?? 'application/json']: { schema: jsonSchema(op.body.schema, 'input') } },
          },
        }
      : {}),
    responses: { ...responses, ...errorResponses(op) },
  }
}

/**
 * The OpenAPI 3.1 document of the whole API, built from the zod schemas the routes validate
 * with (`API_OPERATIONS`), with both error shapes as components.
 */
export function openApiDocument(): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {}
  for (const op of API_OPERATIONS) (paths[op.path] ??= {})[op.method] = operationOf(op)
  return {
    openapi: '3.1.0',
    info: {
      title: 'llorch',
      version: LLORCH_VERSION,
      description: "One OpenAI-compatible API in front of GPU machines behind NAT. `/v1` speaks OpenAI (and its error shape); `/v2` is llorch's own.",
    },
    tags: [...new Set(API_OPERATIONS.map((op) => op.tag))].map((name) => ({ name })),
    paths,
    components: {
      securitySchemes: {
        adminToken: { type: 'http', scheme: 'bearer', description: 'The bootstrap admin token (the ADMIN_TOKEN secret)' },
        apiKey: { type: 'http', scheme: 'bearer', description: 'An API key (`llk.…`); admin routes need the `admin` scope, /v1 the `inference` scope' },
        nodeToken: { type: 'http', scheme: 'bearer', description: 'A node token (`lln.…`), only on /v2/agent/connect' },
      },
      schemas: {
        OpenAIError: jsonSchema(OpenAIErrorBody, 'output'),
        NativeError: jsonSchema(NativeErrorBody, 'output'),
        ErrorCode: jsonSchema(ErrorCode, 'output'),
      },
    },
  }
}
