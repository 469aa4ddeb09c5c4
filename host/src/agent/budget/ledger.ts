/**
 * The budget ledger: spend per counter (a scope in a window, e.g. peer X on 2026-12-04) with
 * reservations, so concurrent model calls cannot overspend together. Each call reserves its
 * worst case on every counter it touches, all or nothing, before it starts; it settles with
 * its real usage when it ends (the reservation is replaced by the real amount).
 *
 * {@link BudgetLedger} is the interface; {@link MemoryLedger} is the in-process one, and the
 * bus's `KvBudgetLedger` (bus/nats/budget-ledger.ts: NATS KV with compare-and-set) is the one
 * shared by several gateways on one `[bus]`.
 */

/** An amount of spend: USD and tokens. */
export interface Charge {
  usd: number;
  tokens: number;
}

/** A counter a call is charged to, with its limits (absent = not limited in that unit). */
export interface CounterLimit {
  /** Identifies scope and window, e.g. `peer:telegram:default:42|day:2026-12-04`. */
  key: string;
  usd?: number;
  tokens?: number;
}

/** A counter past the warning fraction of one of its limits (reported once per counter). */
export interface CounterWarning {
  key: string;
  unit: "usd" | "tokens";
  spent: number;
  limit: number;
}

/** The outcome of {@link BudgetLedger.reserve}. */
export type Reservation =
  | { ok: true; id: number }
  | {
      ok: false;
      /** The first counter the reservation would take past a limit. */
      counter: CounterLimit;
      unit: "usd" | "tokens";
      /** Spent plus reserved on that counter before this call. */
      spent: number;
    };

/**
 * Shared bookkeeping of spend. `reserve` must never let the counters pass a limit, also when
 * several calls (or processes) reserve at once: the in-process ledger makes it atomic over all
 * its counters; a shared one may refuse spuriously while a concurrent reservation is being
 * rolled back, never admit too much.
 */
export interface BudgetLedger {
  /**
   * Reserves `amount` on every counter, unless that would take one past a limit (then nothing
   * is reserved). A counter already past its limit refuses any amount above zero.
   * @throws Error when a shared ledger cannot be reached (the guard then refuses the call: deny by default)
   */
  reserve(counters: readonly CounterLimit[], amount: Charge): Reservation | Promise<Reservation>;
  /**
   * Replaces reservation `id` by the real spend `actual` on its counters; returns the counters
   * that passed the warning fraction of a limit with it (each reported once). Never throws: a
   * shared ledger that cannot be reached keeps the settlement and applies it later.
   */
  settle(id: number, actual: Charge): CounterWarning[] | Promise<CounterWarning[]>;
  /** Adds spend that happened before (rebuilding from the session log at start). */
  add(keys: readonly string[], actual: Charge): void | Promise<void>;
  /** Spent plus reserved on `key` now. */
  spent(key: string): Charge | Promise<Charge>;
  /**
   * Whether this process should add its session log's spend at start ({@link add}). Absent:
   * always (an in-process ledger starts empty). A shared ledger answers true to one process
   * only, the first that uses it, so the same spend is not counted once per gateway.
   */
  claimRebuild?(): Promise<boolean>;
}

/** In-process {@link BudgetLedger}: synchronous, so a reservation is atomic in this process. */
export class MemoryLedger implements BudgetLedger {
  private readonly counters = new Map<string, Charge>();
  private readonly reservations = new Map<number, { counters: readonly CounterLimit[]; amount: Charge }>();
  private readonly warned = new Set<string>();
  private nextId = 1;

  /** @param warnAt fraction (0..1] of a limit at which {@link settle} reports a counter */
  constructor(private readonly warnAt = 0.8) {}

  reserve(counters: readonly CounterLimit[], amount: Charge): Reservation {
    for (const c of counters) {
      const s = this.counters.get(c.key);
      const usd = s?.usd ?? 0;
      const tokens = s?.tokens ?? 0;
      if (c.usd !== undefined && amount.usd > 0 && usd + amount.usd > c.usd) return { ok: false, counter: c, unit: "usd", spent: usd };
      if (c.tokens !== undefined && amount.tokens > 0 && tokens + amount.tokens > c.tokens) return { ok: false, counter: c, unit: "tokens", spent: tokens };
    }
    for (const c of counters) this.bump(c.key, amount, 1);
    const id = this.nextId++;
    this.reservations.set(id, { counters, amount });
    return { ok: true, id };
  }

  settle(id: number, actual: Charge): CounterWarning[] {
    const r = this.reservations.get(id);
    if (r === undefined) return [];
    this.reservations.delete(id);
    const warnings: CounterWarning[] = [];
    for (const c of r.counters) {
      this.bump(c.key, r.amount, -1);
      const s = this.bump(c.key, actual, 1);
      if (this.warned.has(c.key)) continue;
      if (c.usd !== undefined && c.usd > 0 && s.usd >= this.warnAt * c.usd) warnings.push({ key: c.key, unit: "usd", spent: s.usd, limit: c.usd });
      else if (c.tokens !== undefined && c.tokens > 0 && s.tokens >= this.warnAt * c.tokens)
        warnings.push({ key: c.key, unit: "tokens", spent: s.tokens, limit: c.tokens });
      else continue;
      this.warned.add(c.key);
    }
    return warnings;
  }

  add(keys: readonly string[], actual: Charge): void {
    for (const k of keys) this.bump(k, actual, 1);
  }

  spent(key: string): Charge {
    const s = this.counters.get(key);
    return { usd: s?.usd ?? 0, tokens: s?.tokens ?? 0 };
  }

  private bump(key: string, by: Charge, sign: 1 | -1): Charge {
    let s = this.counters.get(key);
    if (s === undefined) {
      s = { usd: 0, tokens: 0 };
      this.counters.set(key, s);
    }
    s.usd += sign * by.usd;
    s.tokens += sign * by.tokens;
    // Float sums of many small amounts drift: never let a settled counter go below zero.
    if (s.usd < 1e-12) s.usd = Math.max(0, s.usd);
    return s;
  }
}
