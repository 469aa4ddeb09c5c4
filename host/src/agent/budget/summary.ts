/**
 * Usage totals over the session log (`usage.summary`, `exoclaw usage`): the stored `usage`
 * events, summed and grouped. Reads the store; computes nothing the events do not say (an old
 * event without a cost adds tokens and no USD).
 */
import type { SessionInfo, SessionLog } from "../../store/index.js";
import { calendarWindow } from "./windows.js";

/** How {@link summarizeUsage} groups: by agent id, by peer (`channel:account:peer`), by `provider/model`, by calendar day. */
export type UsageGroupBy = "agent" | "peer" | "model" | "day";

/** Options of {@link summarizeUsage}. */
export interface UsageSummaryOptions {
  /** Only events at or after this time, ms since the Unix epoch; default: all. */
  sinceMs?: number;
  by?: UsageGroupBy;
  /** Time zone of `day` groups (IANA); default "UTC". */
  timeZone?: string;
  /** Only sessions this returns true for (a chat client's own sessions); default all. */
  include?: (session: SessionInfo) => boolean;
}

/** Sums of usage events. `costUsd` sums the events that carry a cost; `unpricedCalls` counts those without. */
export interface UsageTotals {
  calls: number;
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  costUsd: number;
  unpricedCalls: number;
}

/** The answer of `usage.summary`: totals, and one row per group (by key) when `by` was given. */
export interface UsageSummary {
  since?: string;
  by?: UsageGroupBy;
  totals: UsageTotals;
  groups?: ({ key: string } & UsageTotals)[];
}

function zero(): UsageTotals {
  return { calls: 0, inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0, costUsd: 0, unpricedCalls: 0 };
}

/**
 * Sums the `usage` events of `log` (sessions updated since `sinceMs`, events at or after it).
 * Reads every matching session's events: O(events) per call.
 */
export async function summarizeUsage(log: SessionLog, options: UsageSummaryOptions = {}): Promise<UsageSummary> {
  const since = options.sinceMs ?? 0;
  const totals = zero();
  const groups = new Map<string, UsageTotals>();
  let cursor: string | undefined;
  do {
    const page = await log.listSessions({ limit: 500, ...(cursor !== undefined ? { cursor } : {}) });
    for (const s of page.sessions) {
      if (s.updatedAt < since || (options.include !== undefined && !options.include(s))) continue;
      for (const ev of await log.read(s.sessionKey)) {
        if (ev.kind !== "usage" || ev.at < since) continue;
        const d = ev.data;
        const targets = [totals];
        if (options.by !== undefined) {
          const key =
            options.by === "agent"
              ? s.agent
              : options.by === "peer"
                ? `${s.channel}:${s.account}:${s.peer}`
                : options.by === "model"
                  ? d.provider !== undefined && d.model !== undefined
                    ? `${d.provider}/${d.model}`
                    : "unknown"
                  : calendarWindow(ev.at, options.timeZone ?? "UTC").day;
          let g = groups.get(key);
          if (g === undefined) groups.set(key, (g = zero()));
          targets.push(g);
        }
        for (const t of targets) {
          t.calls++;
          t.inputTokens += d.inputTokens;
          t.outputTokens += d.outputTokens;
          t.cacheReadTokens += d.cacheReadTokens ?? 0;
          t.cacheWriteTokens += d.cacheWriteTokens ?? 0;
          if (d.costUsd !== undefined) t.costUsd += d.costUsd;
          else t.unpricedCalls++;
        }
      }
    }
    cursor = page.nextCursor;
  } while (cursor !== undefined);
  return {
    ...(options.sinceMs !== undefined ? { since: new Date(options.sinceMs).toISOString() } : {}),
    ...(options.by !== undefined
      ? { by: options.by, groups: [...groups].map(([key, t]) => ({ key, ...t })).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)) }
      : {}),
    totals,
  };
}
