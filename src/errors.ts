/**
 * An error from the hy2fa server extension: its `{message, reason}` and the HTTP status.
 */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly reason: string,
    readonly status: number
  ) {
    super(message);
  }
}
