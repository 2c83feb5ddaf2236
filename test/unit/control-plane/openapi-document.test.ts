import { Validator } from '@seriousme/openapi-schema-validator'
import { describe, expect, it } from 'vitest'
import { openApiDocument } from '../../../control-plane/openapi/openapi-document.ts'

describe('the OpenAPI document', () => {
  it('is a valid OpenAPI 3.1 document whose references all resolve', async () => {
    const validator = new Validator()
    const result = await validator.validate(openApiDocument())
    expect(result.errors ?? []).toEqual([])
    expect(result.valid).toBe(true)
    expect(validator.version).toBe('3.1')
    expect(() => validator.resolveRefs()).not.toThrow()
  })

  it('documents request bodies, query parameters and error shapes from the route schemas', () => {
    const doc = openApiDocument()
    const text = JSON.stringify(doc)
    const paths = (doc.paths ?? {}) as Record<
      string,
      Record<string, { requestBody?: unknown; parameters?: Array<{ name: string }>; responses: Record<string, unknown> }>
    >
    expect(paths['/v1/chat/completions']?.post?.requestBody).toBeDefined()
    expect(paths['/v2/usage']?.get?.parameters?.map((p) => p.name)).toEqual(['from', 'to', 'pool', 'key', 'group_by'])
    expect(Object.keys(paths['/v1/chat/completions']?.post?.responses ?? {})).toEqual(expect.arrayContaining(['200', '400', '401', '429']))
    expect(text).toContain('#/components/schemas/OpenAIError')
    expect(text).toContain('#/components/schemas/NativeError')
  })
})
