/**
 * The platform ids of streamed replies' messages (`stream = "edit"`), kept with the owed reply so
 * that after a crash the reply's final text edits that same message instead of sending a second
 * one: `<stateDir>/channels/streamed-replies.json`, mode 0600, written whole and atomically
 * (util/atomic-file.ts) each time an entry is added or removed. Keyed by the inbound message's
 * idempotency key, the key of its entry in the store's reply outbox (`SessionLog.pendingReplies`).
 *
 * Why a state file and not a session event: the message id is known while the turn is still
 * running, and the session's events are then being appended by the turn itself (with
 * `expectedSeq` checks); a new event kind would also have to pass through the store's
 * validation, projection and back ends, which are being reworked. The file holds only replies in
 * flight (entries leave once the reply is settled), so it stays small.
 *
 * File shape: `{"version": 1, "replies": {"<idempotency key>": {"channel", "account", "peer",
 * "platformMessageId", "at"}}}` (`at`: ms since the epoch).
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { writeFileAtomic } from "../util/index.js";

/** Entries kept at most; the oldest go first (a reply owed that long is retried as a new message). */
const MAX_ENTRIES = 10_000;

/** One streamed reply's message. */
export interface StreamedReply {
  channel: string;
  account: string;
  peer: string;
  /** The id the plugin's `send` returned for the streamed message. */
  platformMessageId: string;
  /** When it was sent, ms since the epoch. */
  at: number;
}

/** Where the file lives under the state directory. */
export function streamStatePath(stateDir: string): string {
  return path.join(stateDir, "channels", "streamed-replies.json");
}

/** The streamed replies' message ids, loaded once, written through on every change (serialized). */
export class StreamedReplies {
  private entries = new Map<string, StreamedReply>();
  private loaded: Promise<void> | undefined;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly file: string,
    private readonly logger: { warn(o: object, m: string): void },
  ) {}

  /**
   * Reads the file (once). A missing file is empty; an unreadable or malformed one is logged and
   * treated as empty (its replies then go out as new messages: at least once, never lost).
   */
  load(): Promise<void> {
    this.loaded ??= (async () => {
      let text: string;
      try {
        text = await readFile(this.file, "utf8");
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT")
          this.logger.warn({ file: this.file, error: (err as Error).message }, "cannot read the streamed replies file; ignored");
        return;
      }
      try {
        const doc = JSON.parse(text) as { version?: unknown; replies?: Record<string, Partial<StreamedReply>> };
        for (const [key, e] of Object.entries(doc.replies ?? {})) {
          if (typeof e?.platformMessageId === "string" && typeof e.channel === "string" && typeof e.account === "string" && typeof e.peer === "string") {
            this.entries.set(key, { channel: e.channel, account: e.account, peer: e.peer, platformMessageId: e.platformMessageId, at: Number(e.at) || 0 });
          }
        }
      } catch (err) {
        this.logger.warn({ file: this.file, error: (err as Error).message }, "the streamed replies file is not valid JSON; ignored");
      }
    })();
    return this.loaded;
  }

  /** The streamed message of the reply owed under `key` (call {@link load} first). */
  get(key: string): StreamedReply | undefined {
    return this.entries.get(key);
  }

  /** Records a streamed message; resolves once it is on disk. @throws Error naming the file when it cannot be written */
  async remember(key: string, entry: StreamedReply): Promise<void> {
    await this.load();
    this.entries.set(key, entry);
    while (this.entries.size > MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value!);
    await this.flush();
  }

  /** Drops the entries of settled replies (and, with `keep`, every entry whose key is not in it). Never throws (logged). */
  async forget(keys: readonly string[], keep?: ReadonlySet<string>): Promise<void> {
    await this.load();
    let changed = false;
    for (const k of keys) changed = this.entries.delete(k) || changed;
    if (keep !== undefined) {
      for (const k of [...this.entries.keys()]) if (!keep.has(k)) changed = this.entries.delete(k) || changed;
    }
    if (!changed) return;
    await this.flush().catch((err: unknown) => this.logger.warn({ file: this.file, error: (err as Error).message }, "cannot update the streamed replies file"));
  }

  private flush(): Promise<void> {
    const next = this.writing.then(() =>
      writeFileAtomic(this.file, JSON.stringify({ version: 1, replies: Object.fromEntries(this.entries) }), { mode: 0o600 }),
    );
    this.writing = next.catch(() => {});
    return next;
  }
}
