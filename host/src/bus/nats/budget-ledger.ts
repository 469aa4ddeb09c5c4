/**
 * The budget ledger shared by every gateway on one NATS bus (issue 16; docs/bus.md, "Budgets
 * across gateways"): each counter (`global|day:2026-12-04`, ...) is one key of the KV bucket
 * {@link BUDGET_BUCKET}, its value the settled spend plus the open reservations of every
 * gateway, updated by compare-and-set on the key's revision ({@link KvCells}: JetStream's expected
 * last subject sequence), so increments made at the same time by several gateways are never lost:
 * a write based on a stale value is refused by the server and redone on the fresh one.
 *
 * - `reserve` updates all its counters at once (in parallel); each admits the amount only if the
 *   counter's settled spend plus its live reservations plus the amount stays within the limit.
 *   When one refuses, the ones that took it are rolled back. Over several counters this
 *   is not one atomic step: a concurrent call can see a reservation that is being rolled back
 *   and be refused too (refusing too much, near the limit, never admitting too much).
 * - Each reservation is stored under `<instance id>:<n>` with an expiry (`reservationTtlMs`):
 *   the reservations of a gateway that died mid-call stop counting then.
 * - `settle` replaces the reservation by the real spend. While NATS is unreachable the
 *   settlements wait in memory, in order, and are applied when it is back (before any new
 *   reservation of this process); the reservations keep counting meanwhile.
 * - `reserve` with NATS unreachable throws: the guard refuses the call (deny by default).
 * - The warning past `warnAt` of a limit is reported once for the whole cluster (a flag in the value).
 *
 * Values are JSON: `{"s":[usd,tokens],"r":{"<instance>:<n>":[usd,tokens,expiresAtMs]},"w":1}`.
 */
import { JetStreamApiError } from "@nats-io/jetstream";
import type { BudgetLedger, Charge, CounterLimit, CounterWarning, Reservation } from "../../agent/index.js";
import { errorMessage } from "../../util/index.js";
import { KvCells, kvKeyOf, type KvCellsBus } from "./kv-cell.js";

/** KV bucket of the shared budget counters. */
export const BUDGET_BUCKET = "exoclaw_budgets";
/** How long a counter not written is kept, ms: 62 days (the span the in-process ledger rebuilds from the log). */
export const BUDGET_MAX_AGE_MS = 62 * 86_400_000;
/** Key whose creation elects the process that adds the session log's spend to a new bucket. */
const REBUILD_MARKER = "m.rebuilt";
/** How often the rebuild marker is rewritten, so that it outlives the bucket's max age like the counters. */
const MARKER_REFRESH_MS = 6 * 3600_000;

/** What a {@link KvBudgetLedger} needs of the bus: its JetStream client while NATS is ready. */
export interface BudgetLedgerBus extends KvCellsBus {
  readonly instanceId: string;
}

/** Options of {@link KvBudgetLedger}. */
export interface KvBudgetLedgerOptions {
  bus: BudgetLedgerBus;
  /** Fraction (0..1] of a limit at which `settle` reports a counter (once for the cluster). */
  warnAt: number;
  /** How long an unsettled reservation counts, ms (longer than any model call); default 30 min. */
  reservationTtlMs?: number;
  /** Compare-and-set attempts per counter before giving up (contention); default 50. */
  maxAttempts?: number;
  /** Clock, ms since the epoch; default `Date.now`. */
  now?: () => number;
  /** Told when settlements cannot be written (they are retried). */
  onWarning?: (message: string, error?: unknown) => void;
}

/** A settlement being written: the counters still to write. */
interface Settlement {
  rid: string;
  counters: CounterLimit[];
  expiresAt: number;
  actual: Charge;
}

/** A counter's value in the bucket. */
interface CounterValue {
  /** Settled spend [usd, tokens]. */
  s: [number, number];
  /** Open reservations by `<instance>:<n>`: [usd, tokens, expiresAtMs]. */
  r: Record<string, [number, number, number]>;
  /** Set once the warning was reported. */
  w?: 1;
}

/**
 * The KV key of a counter: `c.` and the counter key with every byte outside `[A-Za-z0-9_-]`
 * written as `=XX` (hex), since KV keys allow only `[-/=.\w]` and `.` separates tokens.
 */
export function counterKvKey(counter: string): string {
  return kvKeyOf("c.", counter);
}

function parseValue(bytes: Uint8Array | undefined): CounterValue {
  if (bytes === undefined || bytes.length === 0) return { s: [0, 0], r: {} };
  try {
    const v = JSON.parse(Buffer.from(bytes).toString("utf8")) as Partial<CounterValue>;
    return { s: Array.isArray(v.s) ? [Number(v.s[0]) || 0, Number(v.s[1]) || 0] : [0, 0], r: v.r ?? {}, ...(v.w === 1 ? { w: 1 as const } : {}) };
  } catch {
    return { s: [0, 0], r: {} };
  }
}

/** Settled plus live reservations; drops expired reservations from `v`. */
function liveTotal(v: CounterValue, now: number): Charge {
  let usd = v.s[0];
  let tokens = v.s[1];
  for (const [id, [u, t, exp]] of Object.entries(v.r)) {
    if (exp <= now) {
      delete v.r[id];
      continue;
    }
    usd += u;
    tokens += t;
  }
  return { usd, tokens };
}

/** See the module comment. */
export class KvBudgetLedger implements BudgetLedger {
  private readonly ttl: number;
  private readonly now: () => number;
  private nextId = 1;
  /** Reservations of this process not settled yet, with when they expire (ms since the epoch). */
  private readonly open = new Map<number, { counters: readonly CounterLimit[]; expiresAt: number }>();
  /** Settlements not written yet (NATS unreachable), oldest first. */
  private readonly pending: Settlement[] = [];
  private flushing: Promise<void> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private markerTimer: NodeJS.Timeout | undefined;
  /** The counters' bucket (created on first use, with file storage and {@link BUDGET_MAX_AGE_MS}). */
  private readonly cells: KvCells;

  constructor(private readonly options: KvBudgetLedgerOptions) {
    this.ttl = options.reservationTtlMs ?? 30 * 60_000;
    this.now = options.now ?? Date.now;
    this.cells = new KvCells({ bus: options.bus, bucket: BUDGET_BUCKET, maxAgeMs: BUDGET_MAX_AGE_MS, maxAttempts: options.maxAttempts ?? 50 });
  }

  /** Settlements waiting for NATS. */
  get pendingSettlements(): number {
    return this.pending.length;
  }

  /**
   * Reads counter `key`, applies `change` and writes it back if the revision is still the one
   * read; redoes it on a concurrent write ({@link KvCells.update}: one update per key at a time in
   * this process, so conflicts come only from other processes). `change` returns false to write nothing.
   * @returns the value written (or read, when nothing was written)
   * @throws Error when NATS cannot be reached or the key stays contended for `maxAttempts`
   */
  private cas(key: string, change: (v: CounterValue, now: number) => boolean): Promise<{ value: CounterValue; written: boolean }> {
    return this.cells.update(counterKvKey(key), (bytes) => {
      const value = parseValue(bytes);
      const written = change(value, this.now());
      return { ...(written ? { write: JSON.stringify(value) } : {}), result: { value, written } };
    });
  }

  async reserve(counters: readonly CounterLimit[], amount: Charge): Promise<Reservation> {
    await this.flush();
    const id = this.nextId++;
    const rid = `${this.options.bus.instanceId}:${id}`;
    const expiresAt = this.now() + this.ttl;
    // All counters at once (one round trip pair each, in parallel); then the ones that took the
    // reservation are rolled back if another refused or failed.
    const steps = await Promise.allSettled(
      counters.map(async (c): Promise<Reservation | undefined> => {
        let refusal: Reservation | undefined;
        await this.cas(c.key, (v, now) => {
          const t = liveTotal(v, now);
          if (c.usd !== undefined && amount.usd > 0 && t.usd + amount.usd > c.usd) refusal = { ok: false, counter: c, unit: "usd", spent: t.usd };
          else if (c.tokens !== undefined && amount.tokens > 0 && t.tokens + amount.tokens > c.tokens)
            refusal = { ok: false, counter: c, unit: "tokens", spent: t.tokens };
          else {
            refusal = undefined;
            v.r[rid] = [amount.usd, amount.tokens, expiresAt];
            return true;
          }
          return false;
        });
        return refusal;
      }),
    );
    const taken = counters.filter((_, i) => {
      const st = steps[i]!;
      return st.status === "fulfilled" && st.value === undefined;
    });
    if (taken.length === counters.length) {
      this.open.set(id, { counters, expiresAt });
      return { ok: true, id };
    }
    await this.release(rid, taken);
    const failed = steps.find((st): st is PromiseRejectedResult => st.status === "rejected");
    if (failed !== undefined) throw failed.reason;
    // The first refusing counter, in the order given.
    return steps.map((st) => (st.status === "fulfilled" ? st.value : undefined)).find((r) => r !== undefined)!;
  }

  /** Rolls back reservation `rid` on `counters` (best effort: what is left expires with its TTL). */
  private async release(rid: string, counters: readonly CounterLimit[]): Promise<void> {
    await Promise.all(
      counters.map((c) =>
        this.cas(c.key, (v) => {
          if (!(rid in v.r)) return false;
          delete v.r[rid];
          return true;
        }).catch((err: unknown) => this.options.onWarning?.("budget: could not roll back a reservation (it expires on its own)", err)),
      ),
    );
  }

  async settle(id: number, actual: Charge): Promise<CounterWarning[]> {
    const open = this.open.get(id);
    if (open === undefined) return [];
    this.open.delete(id);
    const job: Settlement = { rid: `${this.options.bus.instanceId}:${id}`, counters: [...open.counters], expiresAt: open.expiresAt, actual };
    if (this.pending.length > 0) {
      this.pending.push(job);
      this.scheduleRetry();
      return [];
    }
    try {
      return await this.apply(job);
    } catch (err) {
      this.options.onWarning?.("budget: settlement not written to the shared ledger; retrying", err);
      this.pending.push(job);
      this.scheduleRetry();
      return [];
    }
  }

  /**
   * Writes one settlement on each of its counters, dropping each from `job.counters` once
   * written (a retry after a partial failure writes only the rest). A counter that no longer
   * holds the reservation before it expired was settled already (a write whose answer was lost):
   * it is not charged twice. An expired reservation is settled all the same.
   */
  private async apply(job: Settlement): Promise<CounterWarning[]> {
    const warnings: CounterWarning[] = [];
    const results = await Promise.allSettled(
      [...job.counters].map(async (c) => {
        let warning: CounterWarning | undefined;
        await this.cas(c.key, (v, now) => {
          warning = undefined;
          if (!(job.rid in v.r) && now < job.expiresAt) return false;
          delete v.r[job.rid];
          v.s[0] += job.actual.usd;
          v.s[1] += job.actual.tokens;
          if (v.s[0] < 1e-12) v.s[0] = Math.max(0, v.s[0]);
          if (v.w !== 1) {
            if (c.usd !== undefined && c.usd > 0 && v.s[0] >= this.options.warnAt * c.usd) warning = { key: c.key, unit: "usd", spent: v.s[0], limit: c.usd };
            else if (c.tokens !== undefined && c.tokens > 0 && v.s[1] >= this.options.warnAt * c.tokens)
              warning = { key: c.key, unit: "tokens", spent: v.s[1], limit: c.tokens };
            if (warning !== undefined) v.w = 1;
          }
          return true;
        });
        // Written: a retry of this settlement leaves it out.
        job.counters.splice(job.counters.indexOf(c), 1);
        if (warning !== undefined) warnings.push(warning);
      }),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed !== undefined) throw failed.reason;
    return warnings;
  }

  /** Applies the waiting settlements in order; stops at the first that fails (NATS still down). */
  private flush(): Promise<void> {
    if (this.pending.length === 0) return Promise.resolve();
    return (this.flushing ??= (async () => {
      try {
        while (this.pending.length > 0) {
          await this.apply(this.pending[0]!);
          this.pending.shift();
        }
      } catch (err) {
        this.scheduleRetry();
        throw err;
      } finally {
        this.flushing = undefined;
      }
    })());
  }

  private scheduleRetry(): void {
    if (this.retryTimer !== undefined) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.flush().catch(() => {});
    }, 1_000);
    this.retryTimer.unref();
  }

  async add(keys: readonly string[], actual: Charge): Promise<void> {
    for (const key of keys) {
      await this.cas(key, (v) => {
        v.s[0] += actual.usd;
        v.s[1] += actual.tokens;
        return true;
      });
    }
  }

  async spent(key: string): Promise<Charge> {
    const { value } = await this.cas(key, () => false);
    return liveTotal(value, this.now());
  }

  /**
   * True for the one process that creates the bucket's rebuild marker (it adds its session
   * log's spend); false for every other, and while the marker exists. Each process rewrites the
   * marker every 6 hours so it lives as long as the counters do.
   * @throws Error when NATS cannot be reached (nothing is rebuilt then)
   */
  async claimRebuild(): Promise<boolean> {
    const kv = await this.cells.kv();
    const me = this.options.bus.instanceId;
    let mine: boolean;
    try {
      await kv.create(REBUILD_MARKER, me);
      mine = true;
    } catch (err) {
      if (!(err instanceof JetStreamApiError)) throw err;
      mine = false;
    }
    this.markerTimer ??= setInterval(() => {
      this.cells
        .kv()
        .then((b) => b.put(REBUILD_MARKER, me))
        .catch((e: unknown) => this.options.onWarning?.(`budget: could not refresh the rebuild marker: ${errorMessage(e)}`));
    }, MARKER_REFRESH_MS);
    this.markerTimer.unref();
    return mine;
  }

  /** Stops the timers; settlements still waiting are given up (their reservations expire). */
  close(): void {
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    if (this.markerTimer !== undefined) clearInterval(this.markerTimer);
    this.retryTimer = undefined;
    this.markerTimer = undefined;
  }
}
