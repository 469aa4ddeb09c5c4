/**
 * Forgetting a peer (a person's right to be forgotten): every session of the peer — any agent,
 * the given channel/account or all — is erased from the session log (`SessionLog.delete`, so
 * whatever the back end: memory, SurrealDB, journal, JetStream), and every note written in a
 * conversation with that peer, or by that peer as a sender in a group, is deleted.
 */
import type { SessionLog } from "../../store/index.js";
import type { MemoryService } from "./service.js";

/** Whom to forget: `peer` (a user or chat id) is required; the rest narrow it. */
export interface ForgetTarget {
  peer: string;
  channel?: string | undefined;
  account?: string | undefined;
  agent?: string | undefined;
}

/** What {@link forgetPeer} erased. */
export interface ForgetResult {
  /** Session keys erased. */
  sessions: string[];
  /** Notes deleted (written in the peer's chats, or by the peer as a group sender). */
  notes: number;
}

/** What {@link forgetPeer} reaches into. */
export interface ForgetDeps {
  log: Pick<SessionLog, "listSessions">;
  /** Erases one session in its lane (AgentRuntime.deleteSession: after its queued turns). */
  deleteSession: (sessionKey: string) => Promise<boolean>;
  memory?: MemoryService | undefined;
}

/**
 * Erases everything stored about `target.peer` (see the module comment). Sessions are listed
 * first and erased one by one; a failure stops it (StoreError) with the earlier ones erased —
 * calling it again finishes the job.
 * @throws StoreError when the store fails; Error when the notes file cannot be written
 */
export async function forgetPeer(deps: ForgetDeps, target: ForgetTarget): Promise<ForgetResult> {
  const keys: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await deps.log.listSessions({
      peer: target.peer,
      ...(target.channel !== undefined ? { channel: target.channel } : {}),
      ...(target.agent !== undefined ? { agent: target.agent } : {}),
      ...(cursor !== undefined ? { cursor } : {}),
      limit: 1000,
    });
    for (const s of page.sessions) if (target.account === undefined || s.account === target.account) keys.push(s.sessionKey);
    cursor = page.nextCursor;
  } while (cursor !== undefined);
  const sessions: string[] = [];
  for (const key of keys) {
    if (await deps.deleteSession(key)) sessions.push(key);
    deps.memory?.dropSession(key);
  }
  let notes = 0;
  if (deps.memory) {
    const narrow = { channel: target.channel, account: target.account, agent: target.agent };
    // Notes of the peer's chats, and notes written by the peer as a sender in a group chat.
    notes = (await deps.memory.forgetNotes({ ...narrow, peer: target.peer })) + (await deps.memory.forgetNotes({ ...narrow, sender: target.peer }));
  }
  return { sessions, notes };
}
