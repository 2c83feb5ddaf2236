/** Why fetching a pool's files failed; the message is what the replica's reason shows. */
export type ProvisionErrorCode =
  | 'source_unreachable'
  | 'source_not_found'
  | 'source_unauthorized'
  | 'checksum_mismatch'
  | 'size_mismatch'
  | 'no_space'
  | 'bad_archive'
  | 'transfer_cut'
  | 'interrupted'

export class ProvisionError extends Error {
  override readonly name = 'ProvisionError'
  readonly code: ProvisionErrorCode

  constructor(code: ProvisionErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, options)
    this.code = code
  }
}
