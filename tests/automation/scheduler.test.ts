import pino from "pino";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { MemoryJobStore, Scheduler, parseSchedule, type Job, type RunClaim, type RunOutcome, type ScheduledTurn } from "../../host/src/automation/index.js";

const T = Date.parse("2026-12-04T10:00:00.000Z");
const logger = pino({ level: "silent" });

function job(over: Partial<Job> = {}): Job {
  return {
    id: "tick",
    kind: "cron",
    agent: "main",
    schedule: parseSchedule({ every: "1s" }, 0),
    action: "turn",
    prompt: "report",
    sessionKey: "agent:main:cron:default:tick",
    deliver: { channel: "telegram", account: "default", peer: "42" },
    missed: "skip",
    source: "config",
    createdAt: 0,
    ...over,
  };
}

/** A scheduler over `store` whose turns and deliveries are recorded. */
function harness(options: { jobs?: Job[]; store?: MemoryJobStore; claim?: RunClaim; turn?: (t: ScheduledTurn) => Promise<{ text: string }> } = {}) {
  const turns: ScheduledTurn[] = [];
  const sent: { peer: string; text: string }[] = [];
  const outcomes: RunOutcome[] = [];
  const scheduler = new Scheduler({
    configJobs: options.jobs ?? [job()],
    store: options.store ?? new MemoryJobStore(),
    claim: options.claim ?? { claim: async () => true },
    logger,
    runTurn: async (t) => {
      turns.push(t);
      return options.turn ? options.turn(t) : { text: `reply to ${t.idempotencyKey}` };
    },
    deliver: async (j, text) => {
      sent.push({ peer: j.deliver.peer, text });
    },
    onRun: (_j, o) => outcomes.push(o),
  });
  return { scheduler, turns, sent, outcomes };
}

beforeEach(() => vi.useFakeTimers({ now: T + 500 }));
afterEach(() => vi.useRealTimers());

describe("Scheduler", () => {
  it("runs an every-second job once per slot, each turn keyed by its slot, and delivers each reply", async () => {
    const h = harness();
    await h.scheduler.start();
    await vi.advanceTimersByTimeAsync(10_000);
    await h.scheduler.stop();
    expect(h.turns).toHaveLength(10);
    expect(h.turns.map((t) => t.idempotencyKey)).toEqual(Array.from({ length: 10 }, (_, i) => `cron:tick:${T + 1000 * (i + 1)}`));
    expect(h.turns[0]).toMatchObject({ agentId: "main", sessionKey: "agent:main:cron:default:tick", content: "report", channel: "cron", peer: "tick" });
    expect(h.sent).toHaveLength(10);
    expect(h.sent[0]).toEqual({ peer: "42", text: `reply to cron:tick:${T + 1000}` });
    expect(h.outcomes.every((o) => o === "delivered")).toBe(true);
  });

  it("skips the slots of a downtime with missed = skip, runs the latest once with run_once", async () => {
    for (const [missed, expected] of [
      ["skip", 0],
      ["run_once", 1],
    ] as const) {
      const store = new MemoryJobStore();
      const a = harness({ jobs: [job({ missed })], store });
      await a.scheduler.start();
      await vi.advanceTimersByTimeAsync(3000);
      await a.scheduler.stop();
      const before = a.turns.length;
      vi.setSystemTime(Date.now() + 60_000); // down for a minute
      const b = harness({ jobs: [job({ missed })], store });
      await b.scheduler.start();
      await vi.advanceTimersByTimeAsync(1);
      await b.scheduler.stop();
      expect(before, missed).toBe(3);
      expect(b.turns.length, missed).toBe(expected);
      if (expected) expect(b.turns[0]!.idempotencyKey).toBe(`cron:tick:${Math.floor(Date.now() / 1000) * 1000}`);
    }
  });

  it("a run cut by a crash is resumed at the next start under the same key, whatever the missed policy", async () => {
    const store = new MemoryJobStore();
    let release!: () => void;
    const a = harness({ store, turn: () => new Promise((r) => (release = () => r({ text: "late" }))) });
    await a.scheduler.start();
    await vi.advanceTimersByTimeAsync(600);
    expect(a.turns).toHaveLength(1);
    const key = a.turns[0]!.idempotencyKey;
    // The process dies here: nothing after this point of `a` runs (its scheduler is dropped).
    const b = harness({ store });
    await b.scheduler.start();
    await vi.advanceTimersByTimeAsync(1);
    expect(b.turns[0]?.idempotencyKey).toBe(key);
    expect(b.sent).toHaveLength(1);
    await b.scheduler.stop();
    release();
  });

  it("a slot another gateway claimed is not run here; a failed claim is not run either", async () => {
    const other = harness({ claim: { claim: async (_j, slot) => slot % 2000 === 0 } });
    await other.scheduler.start();
    await vi.advanceTimersByTimeAsync(4000);
    await other.scheduler.stop();
    expect(other.turns.map((t) => Number(t.idempotencyKey.split(":")[2]) % 2000)).toEqual([0, 0]);
    expect(other.outcomes.filter((o) => o === "claimed_elsewhere")).toHaveLength(2);
    const down = harness({ claim: { claim: async () => Promise.reject(new Error("NATS is not connected")) } });
    await down.scheduler.start();
    await vi.advanceTimersByTimeAsync(2000);
    await down.scheduler.stop();
    expect(down.turns).toHaveLength(0);
    expect(down.scheduler.list()[0]!.state.lastError).toMatch(/NATS is not connected/);
  });

  it("a NO_REPLY answer sends nothing; a slow run makes the overlapping slot skip, not pile up", async () => {
    const silent = harness({ turn: async () => ({ text: "  NO_REPLY\n" }) });
    await silent.scheduler.start();
    await vi.advanceTimersByTimeAsync(2000);
    await silent.scheduler.stop();
    expect(silent.turns).toHaveLength(2);
    expect(silent.sent).toHaveLength(0);
    expect(silent.outcomes).toEqual(["silent", "silent"]);

    const slow = harness({ turn: () => new Promise((r) => setTimeout(() => r({ text: "done" }), 2500)) });
    await slow.scheduler.start();
    await vi.advanceTimersByTimeAsync(6000);
    await slow.scheduler.stop();
    expect(slow.outcomes.filter((o) => o === "skipped").length).toBeGreaterThanOrEqual(2);
    expect(slow.turns.length).toBeLessThanOrEqual(3);
  });

  it("runtime jobs are stored; a one-shot job runs once and is removed; config jobs cannot be removed", async () => {
    const store = new MemoryJobStore();
    const h = harness({ jobs: [job()], store });
    await h.scheduler.start();
    await h.scheduler.add(
      job({
        id: "once",
        source: "runtime",
        schedule: parseSchedule({ at: new Date(T + 2500).toISOString() }, 0),
        createdAt: Date.now(),
        action: "message",
        prompt: "take the cake out",
      }),
    );
    expect((await store.load()).jobs.map((j) => j.id)).toEqual(["once"]);
    await expect(h.scheduler.remove("tick")).rejects.toThrow(/configuration file/);
    await vi.advanceTimersByTimeAsync(3000);
    expect(h.sent.filter((s) => s.text === "take the cake out")).toHaveLength(1);
    expect(h.scheduler.get("once")).toBeUndefined();
    expect((await store.load()).jobs).toEqual([]);
    await h.scheduler.stop();
  });
});
