// The shared budget ledger (NATS KV, compare-and-set) on a real nats-server, with three bus
// connections standing for three gateways: concurrent reservations from all of them never take
// a counter past its limit and no increment is lost; a refusal on a later counter rolls back the
// earlier ones; the reservations of a gateway that died stop counting after their TTL; the 80 %
// warning is reported once for the cluster; the session log's spend is added once when several
// gateways start on one store; a ledger that cannot reach NATS throws on reserve
// (the guard denies) and keeps its settlements until NATS is back.
import { describe, expect, it } from "vitest";
import { KvBudgetLedger, counterKvKey } from "../../host/src/bus/nats/index.js";
import { natsBuses } from "../support/nats-buses.js";
import { BudgetGuard } from "../../host/src/agent/index.js";
import { createMemorySessionLog } from "../../host/src/store/index.js";
import { recordingLogger } from "../agent/support.js";

const nats = natsBuses("exoclaw-ledger-");
const bus = (id: string) => nats.bus(id);

describe("the shared budget ledger", () => {
  it("encodes counter keys into valid KV keys", () => {
    expect(counterKvKey("global|day:2026-12-04")).toBe("c.global=7Cday=3A2026-12-04");
    expect(counterKvKey("peer:ws:a.b:ü")).toBe("c.peer=3Aws=3Aa=2Eb=3A=C3=BC");
  });

  it("3 gateways x 40 concurrent reservations: the counter never passes its limit and every settlement is counted", async () => {
    const ledgers = await Promise.all(["g1", "g2", "g3"].map(async (id) => new KvBudgetLedger({ bus: await bus(id), warnAt: 0.8 })));
    const counters = [{ key: "global|day:race", tokens: 1000 }, { key: "agent:main|day:race" }];
    // Each call reserves 100 tokens and spends 60: at most 10 reservations fit at once.
    const results = await Promise.all(
      Array.from({ length: 120 }, async (_, i) => {
        const l = ledgers[i % 3]!;
        const r = await l.reserve(counters, { usd: 0, tokens: 100 });
        if (!r.ok) return { ok: false as const, spent: r.spent };
        const peak = (await l.spent("global|day:race")).tokens;
        await l.settle(r.id, { usd: 0, tokens: 60 });
        return { ok: true as const, peak };
      }),
    );
    const ok = results.filter((r) => r.ok);
    expect(ok.length).toBeGreaterThanOrEqual(10);
    for (const r of ok) expect(r.peak).toBeLessThanOrEqual(1000);
    for (const r of results) if (!r.ok) expect(r.spent + 100).toBeGreaterThan(1000);
    // Every admitted call's 60 tokens landed on both counters (no lost update), nothing else is held.
    expect(await ledgers[0]!.spent("global|day:race")).toEqual({ usd: 0, tokens: 60 * ok.length });
    expect(await ledgers[1]!.spent("agent:main|day:race")).toEqual({ usd: 0, tokens: 60 * ok.length });
    expect(60 * ok.length).toBeLessThanOrEqual(1000);
    for (const l of ledgers) l.close();
  }, 120_000);

  it("rolls back the earlier counters when a later one refuses", async () => {
    const l = new KvBudgetLedger({ bus: await bus("rb"), warnAt: 0.8 });
    await l.add(["peer:x|day:rb"], { usd: 0, tokens: 95 });
    const r = await l.reserve(
      [
        { key: "global|day:rb", tokens: 1000 },
        { key: "peer:x|day:rb", tokens: 100 },
      ],
      { usd: 0, tokens: 10 },
    );
    expect(r).toMatchObject({ ok: false, unit: "tokens", spent: 95, counter: { key: "peer:x|day:rb" } });
    expect(await l.spent("global|day:rb")).toEqual({ usd: 0, tokens: 0 });
    l.close();
  }, 60_000);

  it("stops counting the reservations of a gateway that died once they expire", async () => {
    let now = Date.now();
    const b = await bus("dead");
    const dying = new KvBudgetLedger({ bus: b, warnAt: 0.8, reservationTtlMs: 60_000, now: () => now });
    const survivor = new KvBudgetLedger({ bus: await bus("alive"), warnAt: 0.8, now: () => now });
    const c = [{ key: "global|day:ttl", tokens: 100 }];
    expect(await dying.reserve(c, { usd: 0, tokens: 80 })).toMatchObject({ ok: true });
    // never settled: the process died
    expect(await survivor.reserve(c, { usd: 0, tokens: 30 })).toMatchObject({ ok: false, spent: 80 });
    now += 61_000;
    expect(await survivor.reserve(c, { usd: 0, tokens: 30 })).toMatchObject({ ok: true });
    dying.close();
    survivor.close();
  }, 60_000);

  it("reports the warning once for the whole cluster", async () => {
    const a = new KvBudgetLedger({ bus: await bus("wa"), warnAt: 0.5 });
    const b = new KvBudgetLedger({ bus: await bus("wb"), warnAt: 0.5 });
    const c = [{ key: "global|day:warn", usd: 1 }];
    const warnings = [];
    for (const l of [a, b, a, b]) {
      const r = await l.reserve(c, { usd: 0.2, tokens: 0 });
      if (!r.ok) throw new Error("refused");
      warnings.push(...(await l.settle(r.id, { usd: 0.2, tokens: 0 })));
    }
    expect(warnings).toEqual([{ key: "global|day:warn", unit: "usd", spent: expect.closeTo(0.6, 9), limit: 1 }]);
    a.close();
    b.close();
  }, 60_000);

  it("3 gateways starting on one shared store add its spend to the bucket once (one is elected)", async () => {
    const log = createMemorySessionLog();
    const at = Date.now();
    await log.append("agent:main:ws:default:p1", [
      { kind: "usage", at, data: { inputTokens: 100, outputTokens: 50, costUsd: 0.25, provider: "anthropic", model: "claude-sonnet-4-6" } },
    ]);
    const loggers = [recordingLogger(), recordingLogger(), recordingLogger()];
    const guards = await Promise.all(
      ["r1", "r2", "r3"].map(
        async (id, i) =>
          new BudgetGuard({
            budgets: { timezone: "UTC", warnAt: 0.8, global: { monthUsd: 1 } },
            pricing: {},
            logger: loggers[i]!,
            ledger: new KvBudgetLedger({ bus: await bus(id), warnAt: 0.8 }),
          }),
      ),
    );
    await Promise.all(guards.map((g) => g.rebuild(log)));
    expect(loggers.filter((l) => l.lines.some((x) => x.msg === "budgets: spend rebuilt from the session log")).length).toBe(1);
    const month = `global|month:${new Date(at).toISOString().slice(0, 7)}`;
    for (const g of guards) expect(await g.spent(month)).toEqual({ usd: 0.25, tokens: 150 });
    for (const g of guards) (g.ledger as KvBudgetLedger).close();
  }, 60_000);

  it("without NATS: reserve throws (deny), settlements wait and are written when NATS is back", async () => {
    const b = await bus("outage");
    const l = new KvBudgetLedger({ bus: b, warnAt: 0.8 });
    const c = [{ key: "global|day:outage", tokens: 1000 }];
    const r = await l.reserve(c, { usd: 0, tokens: 100 });
    if (!r.ok) throw new Error("refused");
    await nats.server.stop();
    await waitFor(() => !b.ready);
    await expect(l.reserve(c, { usd: 0, tokens: 1 })).rejects.toThrow(/not connected/);
    expect(await l.settle(r.id, { usd: 0, tokens: 42 })).toEqual([]);
    expect(l.pendingSettlements).toBe(1);
    await nats.server.restart();
    await waitFor(() => b.ready, 30_000);
    await waitFor(() => l.pendingSettlements === 0, 30_000);
    expect(await l.spent("global|day:outage")).toEqual({ usd: 0, tokens: 42 });
    l.close();
  }, 90_000);
});

async function waitFor(cond: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 100));
  }
}
