// A turn parked on an approval whose gateway dies is taken over by another gateway of the bus
// (issue 19; docs/bus.md, "A parked turn whose gateway dies"): 2 gateway processes on one real
// nats-server with the JetStream session log; a channel message's turn parks on gateway A (the
// approver is asked); A is killed with SIGKILL; once A's partition lease lapses, gateway B gets
// the unacknowledged message again and resumes the parked run (same approval id, no new model
// call, no new request to the approver); the approver's `approve <id>` sent through B resumes it
// once: one `approval_resolved`, one `tool_result`, one reply, two model calls in all. Nothing
// is timed.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startBusGateways, waitForPartitionsSpread, webhookSessionKey, type BusGateways } from "../support/bus-gateways.js";
import { fixture } from "../plugins/sandbox/support.js";

const PARTITIONS = 4;
const APPROVER = "boss";
let g: BusGateways;

beforeAll(async () => {
  const pluginsDir = mkdtempSync(join(tmpdir(), "exoclaw-takeover-plugins-"));
  writeFileSync(join(pluginsDir, "echo.wasm"), await fixture("echo"));
  g = await startBusGateways({
    gateways: 2,
    bus: { partitions: PARTITIONS, ack_wait_ms: 2_000, lease_ttl_ms: 6_000 },
    args: ["--plugins-dir", pluginsDir],
    config: {
      agents: [
        {
          id: "main",
          provider: "anthropic",
          model: "emu-takeover",
          approvals: { rules: [{ tool: "echo" }], approver: `webhook:default:${APPROVER}`, timeout_ms: 600_000 },
        },
      ],
    },
  });
  await waitForPartitionsSpread(g, [0, 1], PARTITIONS);
}, 240_000);

afterAll(async () => {
  await g?.stop();
});

const replyTo = (id: string, ms = 60_000) => g.platform.waitFor((r) => r.json?.replyTo === id, ms);
const repliesTo = (id: string) => g.platform.requests.filter((r) => r.json?.replyTo === id);
const modelRequestsWith = (marker: string) => g.emulator.requests.filter((r) => JSON.stringify(r.body).includes(marker));
/** Polls an async probe every 250 ms until it is true. */
async function until(probe: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await probe().catch(() => false))) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe("a parked turn whose gateway dies", () => {
  it("is resumed by the gateway that takes its partition over, and the approval answered there resumes it once", async () => {
    const marker = "takeover-1";
    expect((await g.post(0, { peer: "alice", content: `use:echo {"text":"${marker}"}`, messageId: "t1" })).status).toBe(200);
    const asks = () => g.platform.requests.filter((r) => r.json?.peer === APPROVER && String(r.json?.content).includes(marker));
    const ask = await g.platform.waitFor((r) => r.json?.peer === APPROVER && String(r.json?.content).includes(marker), 60_000);
    const id = /\[([a-z2-9]{6})\]/.exec(String(ask.json.content))![1]!;
    const holder = g.senderOf(ask);
    expect([0, 1]).toContain(holder);
    const survivor = 1 - holder;
    expect((await g.rpc(holder, "approvals.list")).approvals.map((a: { id: string }) => a.id)).toContain(id);

    await g.kill(holder);
    // The survivor takes the dead gateway's partitions (lease TTL), gets the unacknowledged
    // message again (ack wait) and parks the same run on the same approval.
    await until(async () => (await g.rpc(survivor, "approvals.list")).approvals.some((a: { id: string }) => a.id === id), 90_000, "the takeover");
    const logs = g.gateways[survivor]!.gateway.logs;
    expect(logs.some((l) => l.msg === "turn of a bus message was left parked on an approval by another process; resuming it here")).toBe(true);
    expect(logs.some((l) => l.msg === "turn of a bus message was left unfinished by another process; running it again")).toBe(false);
    // Not run again: still one model call, and the approver was asked once.
    expect(modelRequestsWith(marker)).toHaveLength(1);
    expect(asks()).toHaveLength(1);

    // The approver answers through the surviving gateway.
    expect((await g.post(survivor, { peer: APPROVER, content: `approve ${id}`, messageId: "b1" })).status).toBe(200);
    expect((await replyTo("b1")).json.content).toBe(`Approved ${id}.`);
    expect((await replyTo("t1")).json.content).toBe(`The answer is ${marker}.`);
    // A second answer decides nothing: an ordinary message for the model.
    expect((await g.post(survivor, { peer: APPROVER, content: `approve ${id}`, messageId: "b2" })).status).toBe(200);
    expect((await replyTo("b2")).json.content).toBe(`You said: approve ${id}`);
    await new Promise((r) => setTimeout(r, 1500));
    expect(repliesTo("t1")).toHaveLength(1);
    expect(modelRequestsWith(marker)).toHaveLength(2);

    const events = await g.history(survivor, webhookSessionKey("alice"));
    const run = events.find((e) => e.kind === "approval_pending")!.runId;
    expect(events.filter((e) => e.kind === "approval_pending").map((e) => e.data.id)).toEqual([id]);
    expect(events.filter((e) => e.kind === "approval_resolved").map((e) => e.data)).toEqual([{ id, approved: true, by: `webhook:default:${APPROVER}` }]);
    expect(events.filter((e) => e.kind === "tool_result")).toHaveLength(1);
    expect(events.filter((e) => e.kind === "turn_started")).toHaveLength(1);
    expect(events.filter((e) => e.kind === "error")).toEqual([]);
    expect(events.filter((e) => e.kind === "turn_ended" && e.runId === run)).toHaveLength(1);
  }, 240_000);
});
