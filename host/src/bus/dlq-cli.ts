/**
 * Functions behind `exoclaw dlq list|replay|purge` (the command itself lives in host/src/cli).
 * Each takes an open {@link Bus} (or just its dead-letter store) and returns plain data; the
 * command prints it with {@link formatDeadLetters} or as JSON.
 */
import type { DeadLetter, DeadLetterStore, ReplayResult } from "./types.js";

type HasDlq = DeadLetterStore | { deadLetters: DeadLetterStore };

function store(x: HasDlq): DeadLetterStore {
  return "deadLetters" in x ? x.deadLetters : x;
}

/** `exoclaw dlq list [--consumer NAME] [--limit N]`: entries, oldest first. */
export async function dlqList(bus: HasDlq, options: { consumer?: string; limit?: number } = {}): Promise<DeadLetter[]> {
  return store(bus).list(options);
}

/**
 * `exoclaw dlq replay [ID...] [--all]`: re-publishes the entries (all when `ids` is empty and
 * `all` is true) and removes them. Replaying nothing without `all` is refused, so a bare command
 * cannot replay everything by accident.
 * @throws BusError `not_found` for an unknown id; Error when neither ids nor `all` are given
 */
export async function dlqReplay(bus: HasDlq, ids: readonly string[], options: { all?: boolean } = {}): Promise<ReplayResult[]> {
  if (ids.length === 0 && !options.all) throw new Error("name the dead letters to replay, or pass --all");
  return store(bus).replay(ids.length === 0 ? undefined : ids);
}

/**
 * `exoclaw dlq purge [ID...] [--all]`: removes entries; returns how many.
 * @throws BusError `not_found` for an unknown id; Error when neither ids nor `all` are given
 */
export async function dlqPurge(bus: HasDlq, ids: readonly string[], options: { all?: boolean } = {}): Promise<number> {
  if (ids.length === 0 && !options.all) throw new Error("name the dead letters to purge, or pass --all");
  return store(bus).purge(ids.length === 0 ? undefined : ids);
}

/** A fixed-width table: id, when, consumer, attempts, subject, msgId, error (first line, cut to 60). */
export function formatDeadLetters(entries: readonly DeadLetter[]): string {
  if (entries.length === 0) return "no dead letters\n";
  const rows = entries.map((e) => [
    e.id,
    new Date(e.failedAt).toISOString(),
    e.consumer,
    String(e.attempts),
    e.subject,
    e.msgId,
    (e.error.split("\n")[0] ?? "").slice(0, 60),
  ]);
  const head = ["ID", "FAILED AT", "CONSUMER", "TRIES", "SUBJECT", "MSG ID", "ERROR"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  ");
  return [line(head), ...rows.map(line)].join("\n") + "\n";
}
