import { Hono } from 'hono'
import type { Context } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import { CreateFileFields, FILE_MAX_BYTES, FileId, FileListQuery, LlorchError, refusalError } from '../../protocol/index.ts'
import type { FileList, OpenAIFile } from '../../protocol/index.ts'
import type { InferenceEnv } from '../answer/answer-task.ts'
import { batchCaller, pathId } from '../batch/batch-caller.ts'
import { fillFile, newFileId } from '../batch/file-writer.ts'
import { MultipartReader, boundaryOf } from '../batch/multipart-reader.ts'
import { itemOf, listBody } from '../batch/list-body.ts'
import { keyListing } from '../batch/listing-store.ts'
import { errorResponse } from '../middleware/error-response.ts'
import { parseInput } from '../middleware/validate-json.ts'
import { readQuery } from '../middleware/validate-query.ts'

/** Room in an upload's body for the multipart boundaries and fields around the file. */
const MULTIPART_OVERHEAD_BYTES = 64 * 1024
/** Longest file name kept; a longer one is cut. */
const FILENAME_MAX_CHARS = 256

/** Longest value of a form field other than the file. */
const FIELD_MAX_BYTES = 1024

/**
 * Streams the upload's `file` part into a new FileObject as it arrives (never holding the body
 * whole) and checks the other fields, which may come before or after it; answers the file, sealed,
 * or a 400 naming the field, and leaves no file behind a refusal.
 */
async function upload(c: Context<InferenceEnv>, apiKeyId: string): Promise<OpenAIFile> {
  const body = c.req.raw.body
  if (!body) throw new LlorchError('invalid_request', 'the form has no `file` part', { param: 'file' })
  const form = new MultipartReader(body, boundaryOf(c.req.header('Content-Type')))
  const createdAt = Date.now()
  const fileId = newFileId()
  const fields: Record<string, string> = {}
  let stored = false
  try {
    for (let part = await form.next(); part; part = await form.next()) {
      if (part.name !== 'file' || part.filename === null) {
        fields[part.name] = await form.text(FIELD_MAX_BYTES)
        continue
      }
      if (stored) throw new LlorchError('invalid_request', 'the form has more than one `file` part', { param: 'file' })
      const filename = part.filename.slice(0, FILENAME_MAX_CHARS) || 'upload.jsonl'
      stored = true
      const filled = await fillFile(c.env, { id: fileId, apiKeyId, filename, purpose: 'batch', createdAt }, form.data())
      if (!filled.ok) throw refusalError(filled)
    }
    if (!stored) throw new LlorchError('invalid_request', 'the form has no `file` part', { param: 'file' })
    const checked = parseInput(CreateFileFields, fields, 'form')
    const seconds = checked['expires_after[seconds]']
    const sealed = await c.env.FILES.getByName(fileId).seal({ expiresAt: seconds === undefined ? null : createdAt + seconds * 1000 })
    if (!sealed.ok) throw refusalError(sealed)
    return sealed.value
  } catch (error) {
    if (stored) await c.env.FILES.getByName(fileId).discard()
    throw error
  }
}

/** `/v1/files`, OpenAI's: upload (`purpose: "batch"`), list, see, read and delete the files of the calling key. */
export const fileRoutes = new Hono<InferenceEnv>()
  .post(
    '/v1/files',
    bodyLimit({
      maxSize: FILE_MAX_BYTES + MULTIPART_OVERHEAD_BYTES,
      onError: (c) => errorResponse(c, new LlorchError('payload_too_large', `a file may have at most ${FILE_MAX_BYTES} bytes`, { param: 'file' })),
    }),
    async (c) => c.json(await upload(c, batchCaller(c).keyId)),
  )
  .get('/v1/files', async (c) => {
    const owner = batchCaller(c)
    const query = readQuery(c, FileListQuery)
    const page = await c.env.LISTINGS.getByName(keyListing(owner.keyId)).page({
      kind: 'file',
      after: query.after,
      limit: query.limit,
      order: query.order,
      tag: query.purpose,
    })
    const views = await Promise.all(page.entries.map(async (entry) => itemOf(await c.env.FILES.getByName(entry.id).view({ apiKeyId: owner.keyId }))))
    const body: FileList = listBody(page, views)
    return c.json(body)
  })
  .get('/v1/files/:id', async (c) => {
    const owner = batchCaller(c)
    const viewed = await c.env.FILES.getByName(pathId(c, FileId, 'file')).view({ apiKeyId: owner.keyId })
    if (!viewed.ok) throw refusalError(viewed)
    return c.json(viewed.value)
  })
  .get('/v1/files/:id/content', async (c) => {
    const owner = batchCaller(c)
    const file = c.env.FILES.getByName(pathId(c, FileId, 'file'))
    const first = await file.part({ apiKeyId: owner.keyId, index: 0 })
    if (!first.ok) throw refusalError(first)
    let next = 1
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        if (first.value) controller.enqueue(first.value)
        else controller.close()
      },
      async pull(controller) {
        const part = await file.part({ apiKeyId: owner.keyId, index: next })
        next += 1
        // A file deleted while it was read ends short; nothing else can be sent after the 200.
        if (!part.ok || !part.value) return controller.close()
        controller.enqueue(part.value)
      },
    })
    return c.body(body, 200, { 'Content-Type': 'application/octet-stream' })
  })
  .delete('/v1/files/:id', async (c) => {
    const owner = batchCaller(c)
    const removed = await c.env.FILES.getByName(pathId(c, FileId, 'file')).remove({ apiKeyId: owner.keyId })
    if (!removed.ok) throw refusalError(removed)
    return c.json(removed.value)
  })
