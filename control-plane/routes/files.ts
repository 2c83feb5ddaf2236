import { Hono } from 'hono'
import type { Context } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import { CreateFileFields, FILE_MAX_BYTES, FileId, FileListQuery, LlorchError, refusalError } from '../../protocol/index.ts'
import type { FileList } from '../../protocol/index.ts'
import type { InferenceEnv } from '../answer/answer-task.ts'
import { batchCaller, pathId } from '../batch/batch-caller.ts'
import { newFileId, writeFile } from '../batch/file-writer.ts'
import { itemOf, listBody } from '../batch/list-body.ts'
import { keyListing } from '../batch/listing-store.ts'
import { errorResponse } from '../middleware/error-response.ts'
import { parseInput } from '../middleware/validate-json.ts'
import { readQuery } from '../middleware/validate-query.ts'

/** Room in an upload's body for the multipart boundaries and fields around the file. */
const MULTIPART_OVERHEAD_BYTES = 64 * 1024
/** Longest file name kept; a longer one is cut. */
const FILENAME_MAX_CHARS = 256

/** The upload's `file` and its other fields, checked; anything else is a 400 naming the field. */
async function readUpload(c: Context<InferenceEnv>): Promise<{ file: File; fields: CreateFileFields }> {
  let form: FormData
  try {
    form = await c.req.raw.formData()
  } catch {
    throw new LlorchError('invalid_request', 'request body must be multipart/form-data with a `file` and a `purpose`')
  }
  const file = form.get('file')
  if (!(file instanceof File)) throw new LlorchError('invalid_request', 'the form has no `file` part', { param: 'file' })
  const fields: Record<string, string> = {}
  for (const [name, value] of form.entries()) if (name !== 'file' && typeof value === 'string') fields[name] = value
  return { file, fields: parseInput(CreateFileFields, fields, 'form') }
}

/** `/v1/files`, OpenAI's: upload (`purpose: "batch"`), list, see, read and delete the files of the calling key. */
export const fileRoutes = new Hono<InferenceEnv>()
  .post(
    '/v1/files',
    bodyLimit({
      maxSize: FILE_MAX_BYTES + MULTIPART_OVERHEAD_BYTES,
      onError: (c) => errorResponse(c, new LlorchError('payload_too_large', `a file may have at most ${FILE_MAX_BYTES} bytes`, { param: 'file' })),
    }),
    async (c) => {
      const owner = batchCaller(c)
      const { file, fields } = await readUpload(c)
      const createdAt = Date.now()
      const seconds = fields['expires_after[seconds]']
      const meta = {
        id: newFileId(),
        apiKeyId: owner.keyId,
        filename: file.name.slice(0, FILENAME_MAX_CHARS) || 'upload.jsonl',
        purpose: fields.purpose,
        createdAt,
        expiresAt: seconds === undefined ? null : createdAt + seconds * 1000,
      }
      const written = await writeFile(c.env, meta, file.stream())
      if (!written.ok) throw refusalError(written)
      return c.json(written.value)
    },
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
