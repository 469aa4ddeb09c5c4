// Plain JavaScript (with error-message.d.mts) so that the plugin sandbox worker, which runs
// unbundled from the sources in tests, can import it as well as the TypeScript host.

/**
 * The text of a thrown value for a log line or an error message: `err.message` for an Error,
 * `String(err)` for anything else (a string, a number, an object thrown by a library).
 * Never throws for an Error; the stack is never included.
 * @param {unknown} err
 * @returns {string}
 */
export function errorMessage(err) {
  return err instanceof Error ? err.message : String(err);
}
