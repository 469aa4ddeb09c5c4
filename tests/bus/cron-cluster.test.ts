// Three gateways on one nats-server, each with the same `[[cron]]` job every second: each slot
// runs once in the cluster (one model call, one reply to the platform), whichever gateway wins
// the slot's claim (docs/automation.md, "Across a cluster").
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startBusGateways, type BusGateways } from "../support/bus-gateways.js";

let g: BusGateways;

beforeAll(async () => {
  g = await startBusGateways({
    gateways: 3,
    config: {
      agents: [{ id: "main", provider: "anthropic", model: "emu-cron", tools: [], outbound: ["webhook:ops"] }],
      cron: [{ id: "cluster-tick", every: "1s", prompt: "cluster tick", deliver: { channel: "webhook", peer: "ops" } }],
    },
  });
}, 120_000);

afterAll(async () => {
  await g?.stop();
});

const ticks = () => g.platform.requests.filter((r) => r.json?.content === "You said: cluster tick");

describe("cron across a cluster", () => {
  it("3 gateways, a job every second: each slot fires once (one model call, one reply)", async () => {
    const deadline = Date.now() + 30_000;
    while (ticks().length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(ticks().length).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 8000));
    const history = await g.history(0, "agent:main:cron:default:cluster-tick");
    const keys = history.filter((e) => e.kind === "message_received").map((e) => e.data.idempotencyKey as string);
    // One turn per slot in the shared session log, no slot twice.
    expect(keys.length).toBeGreaterThanOrEqual(5);
    expect(new Set(keys).size).toBe(keys.length);
    const ended = history.filter((e) => e.kind === "turn_ended").length;
    const replies = ticks();
    // Every finished turn was delivered once (a turn may still be going as we read).
    expect(replies.length).toBeGreaterThanOrEqual(ended - 1);
    expect(replies.length).toBeLessThanOrEqual(keys.length);
    const modelCalls = g.emulator.requests.filter((r) => JSON.stringify(r.body).includes("cluster tick")).length;
    expect(modelCalls).toBeLessThanOrEqual(keys.length * 2); // each turn's request carries the history's earlier ticks too
    // The slots were spread over the gateways' claims, not run by all three.
    const senders = new Set(replies.map((r) => g.senderOf(r)));
    expect(senders.size).toBeGreaterThanOrEqual(1);
    const bySlot = new Map<string, number>();
    for (const k of keys) bySlot.set(k, (bySlot.get(k) ?? 0) + 1);
    expect([...bySlot.values()].every((n) => n === 1)).toBe(true);
    console.log(`cron cluster: ${keys.length} slots, ${replies.length} replies from gateways ${[...senders].join(",")}`);
  }, 90_000);
});
