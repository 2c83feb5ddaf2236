import type { HranaValue } from './hrana-schema.ts'

/**
 * What the `libsql` engine binds and returns with safe integers on: INTEGER as bigint, REAL as
 * number, so an integer-valued REAL (2.0) stays a float on the wire, as sqld sends it.
 */
export type SqlValue = null | bigint | number | string | Uint8Array

export function decodeValue(value: HranaValue): SqlValue {
  switch (value.type) {
    case 'null':
      return null
    case 'integer':
      return BigInt(value.value)
    case 'float':
      return value.value
    case 'text':
      return value.value
    case 'blob':
      return Buffer.from(value.base64, 'base64')
  }
}

/** Encodes one cell of a result row; `unknown` because the engine's row type is untyped. */
export function encodeValue(value: unknown): HranaValue {
  if (value === null || value === undefined) return { type: 'null' }
  if (typeof value === 'bigint') return { type: 'integer', value: value.toString() }
  if (typeof value === 'number') return { type: 'float', value }
  if (typeof value === 'string') return { type: 'text', value }
  if (value instanceof Uint8Array) return { type: 'blob', base64: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64') }
  if (value instanceof ArrayBuffer) return { type: 'blob', base64: Buffer.from(value).toString('base64') }
  throw new TypeError(`The engine returned a value of an unexpected type (${typeof value})`)
}
