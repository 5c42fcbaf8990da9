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

/**
 * Whether `error` says that no master can be made with the server's ssh (501
 * `unsupported`: Windows' OpenSSH, too old an OpenSSH); its message says why.
 */
export function isUnsupported(error: unknown): error is ApiError {
  return (
    error instanceof ApiError &&
    (error.reason === 'unsupported' || error.status === 501)
  );
}
