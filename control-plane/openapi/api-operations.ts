import { z } from 'zod'
import {
  AdminBatch,
  AdminBatchList,
  ApiKeyList,
  BatchList,
  BatchListQuery,
  CreateBatchRequest,
  CreateFileFields,
  FileDeleted,
  FileList,
  FileListQuery,
  OpenAIBatch,
  OpenAIFile,
  ApiKeyView,
  CancelTaskResponse,
  CreateChatTask,
  CreateCompletionTask,
  CreateTaskResponse,
  ChatCompletion,
  ChatCompletionRequest,
  CompletionRequest,
  CreateApiKeyRequest,
  CreateApiKeyResponse,
  CreateNodeRequest,
  CreateNodeResponse,
  DebugCosts,
  PoolCeilingRequest,
  PoolCeilingResult,
  EmbeddingList,
  EmbeddingRequest,
  FleetMetrics,
  LLORCH_VERSION,
  ModelList,
  NodeDrainResult,
  NodeList,
  NodeView,
  PatchApiKeyRequest,
  PatchPoolRequest,
  PoolCommand,
  PoolCommandRequest,
  PoolCommandResult,
  PoolList,
  PoolView,
  TaskView,
  TextCompletion,
  UsageQuery,
  UsageReport,
  UsageSelfQuery,
} from '../../protocol/index.ts'

/** Who may call an operation; each maps to the security schemes of the document. */
export type Access = 'public' | 'admin' | 'inference' | 'api_key' | 'node'

export interface ResponseSpec {
  description: string
  /** Content type → body schema; a string schema for text bodies. */
  content?: Record<string, z.ZodType>
}

/** One route of the app, described with the zod schemas the route itself validates with. */
export interface ApiOperation {
  method: 'get' | 'post' | 'patch' | 'delete'
  /** OpenAPI form: `/v2/nodes/{id}`. */
  path: string
  tag: 'inference' | 'tasks' | 'files' | 'batches' | 'nodes' | 'pools' | 'api-keys' | 'usage' | 'metrics' | 'debug' | 'service'
  summary: string
  access: Access
  query?: z.ZodObject
  /** Enumerated path parameters; the others are plain strings. */
  pathEnums?: Record<string, z.ZodEnum>
  body?: { schema: z.ZodType; required: boolean; contentType?: 'multipart/form-data' }
  responses: Record<number, ResponseSpec>
}

const json = (schema: z.ZodType): Record<string, z.ZodType> => ({ 'application/json': schema })
const text = (contentType: string, description: string): Record<string, z.ZodType> => ({ [contentType]: z.string().describe(description) })
const body = (schema: z.ZodType, required = true) => ({ schema, required })

/** The upload form: the file beside the fields `CreateFileFields` checks. */
const UploadForm = CreateFileFields.extend({ file: z.string().describe('The file: JSON lines, one request each (binary)') })

const Health = z.object({ status: z.literal('ok'), version: z.string().describe(`e.g. ${LLORCH_VERSION}`) })
const SSE_CHUNKS = 'Server-sent events: `data: <chunk JSON>` lines, ending with `data: [DONE]`.'
const SSE_TASK_EVENTS =
  'Server-sent events `queued`, `loading`, `started`, `token`, `metrics`, `end`, `error` (protocol/native-tasks.ts `NativeTaskEvent`), each with an `id:`; send `Last-Event-ID` to resume after one.'

/** Every route of `createApp()`; a test checks that the app and this list agree. */
export const API_OPERATIONS: readonly ApiOperation[] = [
  {
    method: 'get',
    path: '/',
    tag: 'service',
    summary: 'The operator dashboard (HTML); credentials are typed into the page',
    access: 'public',
    responses: { 200: { description: 'The dashboard page', content: text('text/html', 'HTML') } },
  },
  {
    method: 'get',
    path: '/health',
    tag: 'service',
    summary: 'Liveness and version',
    access: 'public',
    responses: { 200: { description: 'Up', content: json(Health) } },
  },
  {
    method: 'get',
    path: '/openapi.json',
    tag: 'service',
    summary: 'This document',
    access: 'public',
    responses: { 200: { description: 'OpenAPI 3.1', content: json(z.looseObject({ openapi: z.string() })) } },
  },
  {
    method: 'get',
    path: '/metrics',
    tag: 'metrics',
    summary: 'Prometheus metrics of every pool and node',
    access: 'admin',
    responses: { 200: { description: 'Prometheus text format 0.0.4', content: text('text/plain', 'Prometheus text exposition format') } },
  },
  {
    method: 'get',
    path: '/v2/metrics',
    tag: 'metrics',
    summary: 'The same numbers as /metrics, as JSON',
    access: 'admin',
    responses: { 200: { description: 'Every pool and node', content: json(FleetMetrics) } },
  },

  {
    method: 'get',
    path: '/v1/models',
    tag: 'inference',
    summary: 'Models (pools) with a registered replica',
    access: 'inference',
    responses: { 200: { description: 'OpenAI model list', content: json(ModelList) } },
  },
  {
    method: 'post',
    path: '/v1/chat/completions',
    tag: 'inference',
    summary: 'OpenAI-compatible chat completion; `priority` orders the queue',
    access: 'inference',
    body: body(ChatCompletionRequest),
    responses: {
      200: {
        description: 'A completion, or a stream of chunks with `stream: true`',
        content: { ...json(ChatCompletion), ...text('text/event-stream', SSE_CHUNKS) },
      },
    },
  },
  {
    method: 'post',
    path: '/v1/completions',
    tag: 'inference',
    summary: 'OpenAI-compatible text completion; `priority` orders the queue',
    access: 'inference',
    body: body(CompletionRequest),
    responses: {
      200: {
        description: 'A completion, or a stream of chunks with `stream: true`',
        content: { ...json(TextCompletion), ...text('text/event-stream', SSE_CHUNKS) },
      },
    },
  },
  {
    method: 'post',
    path: '/v1/embeddings',
    tag: 'inference',
    summary: "OpenAI-compatible embeddings from the engine's own /v1/embeddings, queued like generation",
    access: 'inference',
    body: body(EmbeddingRequest),
    responses: { 200: { description: "The engine's vectors, with llorch's model name and usage", content: json(EmbeddingList) } },
  },

  {
    method: 'post',
    path: '/v2/tasks',
    tag: 'tasks',
    summary: 'Queue a chat or completion task; it is dispatched once a client reads its events',
    access: 'inference',
    body: body(z.union([CreateChatTask, CreateCompletionTask])),
    responses: { 202: { description: 'Queued: its place, predicted start and events URL', content: json(CreateTaskResponse) } },
  },
  {
    method: 'get',
    path: '/v2/tasks/{id}/events',
    tag: 'tasks',
    summary: "The task's events; the first reader starts it, a later one (same key) takes over",
    access: 'inference',
    responses: {
      200: { description: 'The events after `Last-Event-ID`, then live ones until the end', content: text('text/event-stream', SSE_TASK_EVENTS) },
      204: { description: 'The task ended and the reader has every event' },
      410: { description: 'The task expired before anyone read it' },
    },
  },
  {
    method: 'post',
    path: '/v2/tasks/{id}/cancel',
    tag: 'tasks',
    summary: 'Cancel a queued or running task; its slot is free when this answers',
    access: 'inference',
    responses: { 200: { description: 'Its state now', content: json(CancelTaskResponse) } },
  },
  {
    method: 'get',
    path: '/v2/tasks/{id}',
    tag: 'tasks',
    summary: 'State, queue position and timings of a task',
    access: 'inference',
    responses: { 200: { description: 'The task', content: json(TaskView) } },
  },

  {
    method: 'post',
    path: '/v1/files',
    tag: 'files',
    summary: 'Upload a batch input file (JSONL, up to 200 MB and 50,000 lines), owned by the calling key',
    access: 'inference',
    body: { schema: UploadForm, required: true, contentType: 'multipart/form-data' },
    responses: { 200: { description: 'The file', content: json(OpenAIFile) } },
  },
  {
    method: 'get',
    path: '/v1/files',
    tag: 'files',
    summary: "The calling key's files, newest first",
    access: 'inference',
    query: FileListQuery,
    responses: { 200: { description: 'A page of files', content: json(FileList) } },
  },
  {
    method: 'get',
    path: '/v1/files/{id}',
    tag: 'files',
    summary: 'A file of the calling key',
    access: 'inference',
    responses: { 200: { description: 'The file', content: json(OpenAIFile) } },
  },
  {
    method: 'get',
    path: '/v1/files/{id}/content',
    tag: 'files',
    summary: "A file's bytes: an input file as uploaded, or a batch's output or error lines",
    access: 'inference',
    responses: { 200: { description: 'The content', content: text('application/octet-stream', 'JSON lines') } },
  },
  {
    method: 'delete',
    path: '/v1/files/{id}',
    tag: 'files',
    summary: 'Delete a file of the calling key',
    access: 'inference',
    responses: { 200: { description: 'Deleted', content: json(FileDeleted) } },
  },
  {
    method: 'post',
    path: '/v1/batches',
    tag: 'batches',
    summary: 'Create a batch from an uploaded file; its lines are checked after the answer, before any runs',
    access: 'inference',
    body: body(CreateBatchRequest),
    responses: {
      200: { description: 'The batch, `validating`: then `in_progress`, or `failed` with each bad line in `errors`', content: json(OpenAIBatch) },
    },
  },
  {
    method: 'get',
    path: '/v1/batches',
    tag: 'batches',
    summary: "The calling key's batches, newest first",
    access: 'inference',
    query: BatchListQuery,
    responses: { 200: { description: 'A page of batches', content: json(BatchList) } },
  },
  {
    method: 'get',
    path: '/v1/batches/{id}',
    tag: 'batches',
    summary: 'A batch of the calling key: status, request counts, files, predicted completion',
    access: 'inference',
    responses: { 200: { description: 'The batch', content: json(OpenAIBatch) } },
  },
  {
    method: 'post',
    path: '/v1/batches/{id}/cancel',
    tag: 'batches',
    summary: 'Cancel a batch: its running lines stop, and what finished is in its output file',
    access: 'inference',
    responses: { 200: { description: 'The batch, `cancelled`', content: json(OpenAIBatch) } },
  },
  {
    method: 'get',
    path: '/v2/batches',
    tag: 'batches',
    summary: "Every key's batches, newest first",
    access: 'admin',
    query: BatchListQuery,
    responses: { 200: { description: 'A page of batches with their key', content: json(AdminBatchList) } },
  },
  {
    method: 'get',
    path: '/v2/batches/{id}',
    tag: 'batches',
    summary: 'One batch of any key',
    access: 'admin',
    responses: { 200: { description: 'The batch with its key', content: json(AdminBatch) } },
  },
  {
    method: 'post',
    path: '/v2/batches/{id}/cancel',
    tag: 'batches',
    summary: 'Cancel a batch of any key; what finished is in its output file',
    access: 'admin',
    responses: { 200: { description: 'The batch, `cancelled`', content: json(AdminBatch) } },
  },
  {
    method: 'get',
    path: '/v2/agent/connect',
    tag: 'service',
    summary: 'WebSocket upgrade for llorch-agent',
    access: 'node',
    responses: { 101: { description: 'Switching protocols: the agent wire protocol (protocol/agent-frames.ts)' } },
  },

  {
    method: 'post',
    path: '/v2/nodes',
    tag: 'nodes',
    summary: 'Register a node; its token is shown once',
    access: 'admin',
    body: body(CreateNodeRequest),
    responses: { 201: { description: 'The node and its token', content: json(CreateNodeResponse) } },
  },
  {
    method: 'get',
    path: '/v2/nodes',
    tag: 'nodes',
    summary: 'List nodes',
    access: 'admin',
    responses: { 200: { description: 'Every node', content: json(NodeList) } },
  },
  {
    method: 'get',
    path: '/v2/nodes/{id}',
    tag: 'nodes',
    summary: 'One node with its replicas',
    access: 'admin',
    responses: { 200: { description: 'The node', content: json(NodeView) } },
  },
  {
    method: 'post',
    path: '/v2/nodes/{id}/drain',
    tag: 'nodes',
    summary: 'Cordon the node for maintenance: no new task, no replica started; every pool it serves drains on this node only',
    access: 'admin',
    body: body(PoolCommandRequest, false),
    responses: {
      202: { description: 'Every pool acked the drain', content: json(NodeDrainResult) },
      502: { description: 'Some pool did not ack', content: json(NodeDrainResult) },
    },
  },
  {
    method: 'post',
    path: '/v2/nodes/{id}/uncordon',
    tag: 'nodes',
    summary: 'Lift the cordon: the node takes tasks again, and an eager pool starts its stopped replica there at once',
    access: 'admin',
    responses: { 200: { description: 'The node', content: json(NodeView) } },
  },
  {
    method: 'delete',
    path: '/v2/nodes/{id}',
    tag: 'nodes',
    summary: 'Revoke the node token and disconnect its agent',
    access: 'admin',
    responses: { 200: { description: 'The revoked node', content: json(NodeView) } },
  },

  {
    method: 'get',
    path: '/v2/pools',
    tag: 'pools',
    summary: 'List pools with live queue and slot numbers',
    access: 'admin',
    responses: { 200: { description: 'Every pool', content: json(PoolList) } },
  },
  {
    method: 'get',
    path: '/v2/pools/{id}',
    tag: 'pools',
    summary: 'One pool; the id may contain slashes',
    access: 'admin',
    responses: { 200: { description: 'The pool', content: json(PoolView) } },
  },
  {
    method: 'patch',
    path: '/v2/pools/{id}',
    tag: 'pools',
    summary: 'Change the pool policy',
    access: 'admin',
    body: body(PatchPoolRequest),
    responses: { 200: { description: 'The pool', content: json(PoolView) } },
  },
  {
    method: 'post',
    path: '/v2/pools/{id}/{command}',
    tag: 'pools',
    summary: 'Preload or drain the pool on every node that serves it (a drain stays until a preload), or reload it one replica at a time',
    access: 'admin',
    pathEnums: { command: PoolCommand },
    body: body(PoolCommandRequest, false),
    responses: {
      202: { description: 'Every node acked', content: json(PoolCommandResult) },
      502: { description: 'Some node did not ack', content: json(PoolCommandResult) },
    },
  },

  {
    method: 'post',
    path: '/v2/api-keys',
    tag: 'api-keys',
    summary: 'Create an API key; it is shown once',
    access: 'admin',
    body: body(CreateApiKeyRequest),
    responses: { 201: { description: 'The key', content: json(CreateApiKeyResponse) } },
  },
  {
    method: 'get',
    path: '/v2/api-keys',
    tag: 'api-keys',
    summary: 'List API keys',
    access: 'admin',
    responses: { 200: { description: 'Every key, without secrets', content: json(ApiKeyList) } },
  },
  {
    method: 'patch',
    path: '/v2/api-keys/{id}',
    tag: 'api-keys',
    summary: "Replace the key's limits (requests and tokens per minute, concurrency, token budget)",
    access: 'admin',
    body: body(PatchApiKeyRequest),
    responses: { 200: { description: 'The key', content: json(ApiKeyView) } },
  },
  {
    method: 'delete',
    path: '/v2/api-keys/{id}',
    tag: 'api-keys',
    summary: 'Revoke an API key',
    access: 'admin',
    responses: { 200: { description: 'The revoked key', content: json(ApiKeyView) } },
  },

  {
    method: 'get',
    path: '/v2/debug/costs',
    tag: 'debug',
    summary: "This isolate's Durable Object entry points, storage writes and critical path, for the bench",
    access: 'admin',
    responses: { 200: { description: 'Counts since the isolate started', content: json(DebugCosts) } },
  },
  {
    method: 'post',
    path: '/v2/debug/pool-ceiling',
    tag: 'debug',
    summary: 'Admit-and-release cycles against a scratch pool of fake replicas: the tasks per second one PoolObject sustains, for the bench',
    access: 'admin',
    body: body(PoolCeilingRequest),
    responses: { 200: { description: 'The measured ceiling', content: json(PoolCeilingResult) } },
  },

  {
    method: 'get',
    path: '/v2/usage',
    tag: 'usage',
    summary: 'Requests and tokens of finished tasks, filtered and grouped',
    access: 'admin',
    query: UsageQuery,
    responses: { 200: { description: 'Totals and groups', content: json(UsageReport) } },
  },
  {
    method: 'get',
    path: '/v2/usage/self',
    tag: 'usage',
    summary: "The calling API key's own usage",
    access: 'api_key',
    query: UsageSelfQuery,
    responses: { 200: { description: 'Totals and groups', content: json(UsageReport) } },
  },
]
