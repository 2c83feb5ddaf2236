/** The admin token `npm start` generates for a local stack: a prefix saying so and a random UUID. */
export function newLocalAdminToken(): string {
  return `local-admin-${crypto.randomUUID()}`
}

/** `check:deploy` refuses a production admin token shorter than the one `npm start` generates. */
export const MIN_ADMIN_TOKEN_LENGTH = newLocalAdminToken().length
