/**
 * The one error type for what the user did wrong. The CLI prints its message as one line and exits
 * with code 2 (no stack trace unless --verbose). Anything else that escapes is a bug: exit code 1.
 */
export class UserError extends Error {
  readonly exitCode = 2;
  /** `cause`: the underlying error (e.g. what a metric plugin threw); --verbose prints its stack too. */
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'UserError';
  }
}

export function isUserError(e: unknown): e is UserError {
  return e instanceof UserError;
}
