/**
 * Where session histories live. Generic over the message type so the store knows nothing of
 * the agent's message shapes. The in-memory store is the first back end; durable ones follow.
 */
export interface SessionStore<M> {
  /** The session's messages in order; `[]` for an unknown session. */
  load(sessionKey: string): Promise<M[]>;
  /** Appends messages to the session atomically (all or none). */
  append(sessionKey: string, messages: M[]): Promise<void>;
  /** Number of sessions with at least one message. */
  count(): number;
}
