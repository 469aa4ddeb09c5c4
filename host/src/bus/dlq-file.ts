/**
 * The in-process bus's dead-letter store: a {@link RecordLog} under the state directory
 * (`<stateDir>/bus/dead-letters.log`), or memory only when no state directory is given.
 * Records: `{t:"dead", entry}` adds an entry, `{t:"gone", ids}` removes entries. The file is
 * rewritten (keeping only the id counter, `{t:"next"}`) when the last entry is removed.
 */
import { BusError } from "./errors.js";
import { REPLAY_OF_HEADER } from "./codec.js";
import { RecordLog } from "./record-log.js";
import type { DeadLetter, DeadLetterStore, PublishAck, PublishOptions, ReplayResult } from "./types.js";

type Publish = (subject: string, data: unknown, options: PublishOptions) => Promise<PublishAck>;

type DlqRecord = { t: "dead"; entry: DeadLetter } | { t: "gone"; ids: string[] } | { t: "next"; id: number };

/** The re-publish id of a replayed dead letter (stable, so replaying an entry twice dedupes). */
export function replayMsgId(msgId: string, deadLetterId: string): string {
  const suffix = `~r${deadLetterId}`;
  return msgId.slice(0, 256 - suffix.length) + suffix;
}

/** See the module comment. */
export class FileDeadLetterStore implements DeadLetterStore {
  private readonly entries = new Map<string, DeadLetter>();
  private nextId = 1;

  private constructor(
    private readonly log: RecordLog | undefined,
    private readonly publish: Publish,
  ) {}

  /** Opens the store at `path` (memory only when `path` is undefined). */
  static async open(path: string | undefined, publish: Publish): Promise<FileDeadLetterStore> {
    if (path === undefined) return new FileDeadLetterStore(undefined, publish);
    const { log, records } = await RecordLog.open(path);
    const store = new FileDeadLetterStore(log, publish);
    for (const { value } of records) {
      const r = value as DlqRecord;
      if (r.t === "dead") {
        store.entries.set(r.entry.id, r.entry);
        store.nextId = Math.max(store.nextId, Number(r.entry.id) + 1);
      } else if (r.t === "gone") {
        for (const id of r.ids) store.entries.delete(id);
      } else if (r.t === "next") {
        store.nextId = Math.max(store.nextId, r.id);
      }
    }
    return store;
  }

  /** Adds an entry (fsync'd when file-backed); returns it with its id. */
  async add(entry: Omit<DeadLetter, "id">): Promise<DeadLetter> {
    const full: DeadLetter = { ...entry, id: String(this.nextId++) };
    if (this.log) await this.log.append({ t: "dead", entry: full } satisfies DlqRecord);
    this.entries.set(full.id, full);
    return full;
  }

  async list(options: { limit?: number; consumer?: string } = {}): Promise<DeadLetter[]> {
    const all = [...this.entries.values()].filter((e) => options.consumer === undefined || e.consumer === options.consumer);
    return all.slice(0, options.limit ?? all.length);
  }

  async count(): Promise<number> {
    return this.entries.size;
  }

  private select(ids: readonly string[] | undefined): DeadLetter[] {
    if (ids === undefined) return [...this.entries.values()];
    return ids.map((id) => {
      const e = this.entries.get(id);
      if (!e) throw new BusError("not_found", `no dead letter with id ${JSON.stringify(id)}`);
      return e;
    });
  }

  async replay(ids?: readonly string[]): Promise<ReplayResult[]> {
    const chosen = this.select(ids);
    const results: ReplayResult[] = [];
    for (const e of chosen) {
      const msgId = replayMsgId(e.msgId, e.id);
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(e.headers)) if (!/^nats-|^exoclaw-published-at$/i.test(k)) headers[k] = v;
      headers[REPLAY_OF_HEADER] = e.msgId;
      const ack = await this.publish(e.subject, e.data, { msgId, headers });
      await this.remove([e.id]);
      results.push({ id: e.id, msgId, ack });
    }
    return results;
  }

  async purge(ids?: readonly string[]): Promise<number> {
    const chosen = this.select(ids);
    await this.remove(chosen.map((e) => e.id));
    return chosen.length;
  }

  private async remove(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    if (this.log) await this.log.append({ t: "gone", ids } satisfies DlqRecord);
    for (const id of ids) this.entries.delete(id);
    if (this.entries.size === 0 && this.log) {
      // ids are never reused (a replayed id is part of the re-publish's dedupe key)
      await this.log.truncate();
      await this.log.append({ t: "next", id: this.nextId } satisfies DlqRecord);
    }
  }

  async close(): Promise<void> {
    await this.log?.close();
  }
}
