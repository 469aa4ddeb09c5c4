// Pairing and per-sender rate windows shared in NATS KV (channels/pairing-kv.ts, rate-kv.ts) on a
// real nats-server, with separate bus connections standing for separate gateways: a code asked
// at one is approved at another and seen by a third; 3 gateways x 30 concurrent messages of one
// sender admit exactly `messages`; a redelivered message id is not counted twice; with NATS down
// a stranger gets no code, a peer seen approved stays in, a never-seen one stays out, the rate
// falls back to each gateway's own window; the file's pairings seed an empty bucket once.
import { describe, expect, it } from "vitest";
import { KvPairingStore } from "../../host/src/channels/pairing-kv.js";
import { KvRateWindows } from "../../host/src/channels/rate-kv.js";
import { emptyPairing, PairingError, PairingStore, type PairingData } from "../../host/src/channels/pairing.js";
import { natsBuses } from "../support/nats-buses.js";

const nats = natsBuses("exoclaw-chkv-");
const bus = (id: string) => nats.bus(id);
const tmp = () => nats.tmp();

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const who = (peer: string) => ({ channel: "telegram", account: "default", peer });
const RATE = { messages: 5, perS: 3600 };

describe("pairing and rate windows in NATS KV", () => {
  it("a file's pairings seed the empty bucket once; a code asked at A is approved at B and seen at C", async () => {
    // A state dir whose file already approved peer "old" (a gateway that ran without a bus).
    const file = PairingStore.inStateDir(await tmp());
    file.approve(file.request(who("old")).code);
    const seedOf = (data: PairingData) => () => data;
    const a = new KvPairingStore({ bus: await bus("pa"), seed: () => file.snapshot() });
    const b = new KvPairingStore({
      bus: await bus("pb"),
      seed: seedOf({ ...emptyPairing(), approved: [{ ...who("other-seed"), code: "ABCD-EFGH", approvedAt: 1 }] }),
    });
    const c = new KvPairingStore({ bus: await bus("pc") });
    expect(await a.isApproved(who("old"))).toBe(true);
    expect(await b.isApproved(who("other-seed"))).toBe(false); // the bucket existed: B's seed is not imported
    const ask = await a.request(who("s1"));
    expect(ask.send).toBe(true);
    expect((await b.request(who("s1"))).code).toBe(ask.code); // the same pending code, not re-sent
    expect((await b.request(who("s1"))).send).toBe(false);
    expect((await c.list()).pending.map((p) => p.code)).toContain(ask.code);
    expect(await c.isApproved(who("s1"))).toBe(false);
    expect((await b.approve(ask.code.toLowerCase())).peer).toBe("s1");
    expect(await c.isApproved(who("s1"))).toBe(true);
    expect(await a.isApproved(who("s1"))).toBe(true);
    await expect(c.approve(ask.code)).rejects.toBeInstanceOf(PairingError); // no longer pending
    expect(await c.deny(ask.code)).toEqual({ code: ask.code, revoked: true });
    expect(await a.isApproved(who("s1"))).toBe(false);
  }, 60_000);

  it("20 strangers asking at 3 gateways at once get 20 distinct codes, none lost", async () => {
    const stores = await Promise.all(["qa", "qb", "qc"].map(async (id) => new KvPairingStore({ bus: await bus(id) })));
    const asks = await Promise.all(Array.from({ length: 20 }, (_, i) => stores[i % 3]!.request(who(`race-${i}`))));
    expect(new Set(asks.map((x) => x.code)).size).toBe(20);
    const pending = (await stores[0]!.list()).pending.filter((p) => p.peer.startsWith("race-"));
    expect(pending.map((p) => p.code).sort()).toEqual(asks.map((x) => x.code).sort());
  }, 60_000);

  it("3 gateways x 30 concurrent messages of one sender: exactly `messages` admitted, one refusal notified", async () => {
    const windows = await Promise.all(["ra", "rb", "rc"].map(async (id) => new KvRateWindows({ bus: await bus(id) })));
    const now = Date.now();
    const decisions = await Promise.all(Array.from({ length: 90 }, (_, i) => windows[i % 3]!.take("telegram\0default\0burst", RATE, now + i, `m${i}`)));
    expect(decisions.filter((d) => d.ok)).toHaveLength(RATE.messages);
    expect(decisions.filter((d) => !d.ok && d.notify)).toHaveLength(1);
    // Another sender has its own window; a redelivery of an admitted message passes uncounted.
    expect(await windows[0]!.take("telegram\0default\0calm", RATE, now, "c1")).toEqual({ ok: true });
    expect(await windows[1]!.take("telegram\0default\0calm", RATE, now + 1, "c1")).toEqual({ ok: true });
    for (let i = 2; i <= RATE.messages; i++) expect(await windows[i % 3]!.take("telegram\0default\0calm", RATE, now + i, `c${i}`)).toEqual({ ok: true });
    expect((await windows[2]!.take("telegram\0default\0calm", RATE, now + 9, "c9")).ok).toBe(false);
    // The window slides: an hour later the sender is admitted again.
    expect(await windows[0]!.take("telegram\0default\0burst", RATE, now + 3600_000 + 100, "later")).toEqual({ ok: true });
  }, 60_000);

  it("with NATS down: a stranger gets no code, a peer seen approved stays in, others stay out; rates fall back per gateway", async () => {
    const warnings: string[] = [];
    const gwBus = await bus("down");
    const store = new KvPairingStore({ bus: gwBus, onWarning: (m) => warnings.push(m) });
    const otherBus = await bus("down-b");
    const other = new KvPairingStore({ bus: otherBus });
    const windows = new KvRateWindows({ bus: gwBus, onWarning: (m) => warnings.push(m) });
    await store.approve((await store.request(who("friend"))).code);
    expect(await store.isApproved(who("friend"))).toBe(true); // read while NATS is up
    // Approved at another gateway, never read here before the outage.
    await other.approve((await other.request(who("unseen"))).code);
    await nats.server.stop();
    await until(() => !gwBus.ready, 20_000, "the bus to notice the outage");
    expect(await store.isApproved(who("friend"))).toBe(true);
    expect(await store.isApproved(who("unseen"))).toBe(false);
    await expect(store.request(who("stranger"))).rejects.toThrow(/pairing store \(NATS KV exoclaw_pairing\) cannot be reached/);
    await expect(store.approve("ABCD-EFGH")).rejects.toThrow(/cannot be reached/);
    await expect(store.list()).rejects.toThrow(/cannot be reached/);
    expect(warnings.filter((w) => /pairing: NATS unreachable/.test(w))).toHaveLength(1); // once per outage
    // The local fallback window still limits (this gateway alone).
    const now = Date.now();
    const local = [];
    for (let i = 0; i < RATE.messages + 2; i++) local.push(await windows.take("telegram\0default\0outage", RATE, now + i, `o${i}`));
    expect(local.filter((d) => d.ok)).toHaveLength(RATE.messages);
    expect(warnings.some((w) => /rate windows: NATS unreachable/.test(w))).toBe(true);
    await nats.server.restart();
    await until(() => gwBus.ready, 30_000, "the bus to reconnect");
    expect(await store.isApproved(who("unseen"))).toBe(true);
    expect((await store.request(who("stranger"))).send).toBe(true);
  }, 120_000);
});
