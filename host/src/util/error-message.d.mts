// Type declarations for error-message.mjs (kept by hand; see that file).

/**
 * The text of a thrown value for a log line or an error message: `err.message` for an Error,
 * `String(err)` for anything else. The stack is never included.
 */
export declare function errorMessage(err: unknown): string;
