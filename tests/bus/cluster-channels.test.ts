// Pairing, per-sender rates and approvals across 2 gateway processes on one real nats-server
// (issues 18 and 19; docs/bus.md, "Pairing and rate windows across gateways" and "Approvals
// answered at any gateway"):
// - a stranger's code sent by gateway 0 is approved through gateway 1 (`exoclaw pairing approve`); the peer's next
//   message is answered whichever gateway receives it;
// - `rate = {messages: 3, per_s: 3600}` holds for one sender whose messages go to both gateways;
// - a turn parked on one gateway is approved through the other (`exoclaw approvals list|approve`,
//   i.e. `approvals.*` RPC) and resumes once; a second answer at either finds nothing;
// - the approver's `approve <id>` consumed by the gateway that does not hold the turn resumes it
//   once; another peer's `approve <id>` decides nothing;
// - with NATS down, a new stranger gets no code and `pairing.list` fails (-32603
//   pairing_unavailable) while the peer approved earlier is still let in (spooled, answered
//   once NATS is back); once NATS is back the stranger gets a code.
// Nothing is timed.
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { inboundSubject, partitionOf } from "../../host/src/bus/subjects.js";
import { heldPartitions, startBusGateways, waitForPartitionsSpread, type BusGateways, type WebhookMessage } from "../support/bus-gateways.js";
import { CLI, RpcClient } from "../support/gateway.js";
import { fixture } from "../plugins/sandbox/support.js";

const PARTITIONS = 4;
const APPROVER = "boss";
let g: BusGateways;

beforeAll(async () => {
  const pluginsDir = mkdtempSync(join(tmpdir(), "exoclaw-cluster-plugins-"));
  writeFileSync(join(pluginsDir, "echo.wasm"), await fixture("echo"));
  g = await startBusGateways({
    gateways: 2,
    bus: { partitions: PARTITIONS },
    args: ["--plugins-dir", pluginsDir],
    config: {
      agents: [
        {
          id: "main",
          provider: "anthropic",
          model: "emu-cluster",
          approvals: { rules: [{ tool: "echo" }], approver: `webhook:default:${APPROVER}`, timeout_ms: 600_000 },
        },
      ],
      channels: { webhook: { allow: [APPROVER, "mallory", "rater"], pairing: true, rate: { messages: 3, per_s: 3600 } } },
    },
  });
  await waitForPartitionsSpread(g, [0, 1], PARTITIONS);
}, 240_000);

afterAll(async () => {
  await g?.stop();
});

/** Runs the `exoclaw` CLI against gateway `i` (its config, state dir and port). */
const cli = (i: number, args: string[]) =>
  spawnSync(process.execPath, [CLI, ...args, "-c", g.gateways[i]!.configFile], {
    env: { ...process.env, EXOCLAW_STATE_DIR: g.gateways[i]!.stateDir, EXOCLAW_PORT: String(g.gateways[i]!.gateway.port) },
    encoding: "utf8",
    timeout: 60_000,
  });
const post = (i: number, m: WebhookMessage & { sender?: string }) => g.post(i, m as WebhookMessage);
const replyTo = (id: string, ms = 30_000) => g.platform.waitFor((r) => r.json?.replyTo === id, ms);
const repliesTo = (id: string) => g.platform.requests.filter((r) => r.json?.replyTo === id);
/** Polls an async probe every 250 ms until it is true. */
async function until(probe: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await probe().catch(() => false))) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
const modelRequestsWith = (marker: string) => g.emulator.requests.filter((r) => JSON.stringify(r.body).includes(marker));

describe("pairing across gateways", () => {
  it("a code sent by gateway 0 is approved at gateway 1; the next message is answered at either", async () => {
    expect((await post(0, { peer: "stranger1", content: "hello", messageId: "p1" })).status).toBe(200);
    const codeMsg = await replyTo("p1");
    expect(g.senderOf(codeMsg)).toBe(0);
    const code = /pairing code is ([A-Z0-9]{4}-[A-Z0-9]{4})/.exec(String(codeMsg.json.content))?.[1];
    expect(code).toBeDefined();
    // Gateway 1 lists the code and approves it.
    expect((await g.rpc(1, "pairing.list")).pending.map((p: { code: string }) => p.code)).toContain(code);
    const approve = cli(1, ["pairing", "approve", code!.toLowerCase()]);
    expect(approve.status, approve.stderr).toBe(0);
    expect(approve.stdout).toContain(`approved ${code}`);
    // Gateway 0 (which issued the code) and gateway 1 both let the peer in now.
    expect((await post(0, { peer: "stranger1", content: "ping", messageId: "p2" })).status).toBe(200);
    expect((await replyTo("p2")).json.content).toBe("pong");
    expect((await post(1, { peer: "stranger1", content: "ping", messageId: "p3" })).status).toBe(200);
    expect((await replyTo("p3")).json.content).toBe("pong");
    expect((await g.rpc(0, "pairing.list")).approved.map((a: { peer: string }) => a.peer)).toContain("stranger1");
    // Gateway 1 does not send the pending stranger a second code either.
    expect((await post(0, { peer: "stranger2", content: "hi", messageId: "p4" })).status).toBe(200);
    await replyTo("p4");
    expect((await post(1, { peer: "stranger2", content: "hi again", messageId: "p5" })).status).toBe(200);
    await g.gateways[1]!.waitForLog((e: Record<string, any>) => e.peer === "stranger2" && /pairing code issued/.test(String(e.msg)), 30_000);
    expect(repliesTo("p5")).toEqual([]);
  }, 120_000);
});

describe("per-sender rate across gateways", () => {
  it("3 messages per hour hold for a sender writing to both gateways", async () => {
    for (const [i, gw] of [0, 1, 0].entries()) {
      expect((await post(gw, { peer: "rater", content: `rate-${i}`, messageId: `r${i}` })).status).toBe(200);
      expect((await replyTo(`r${i}`)).json.content).toBe(`You said: rate-${i}`);
    }
    // The 4th, at gateway 1 (which admitted one itself), is over the shared window.
    expect((await post(1, { peer: "rater", content: "rate-3", messageId: "r3" })).status).toBe(200);
    const refusal = await replyTo("r3");
    expect(refusal.json.content).toContain("the limit is 3 messages per 3600 seconds");
    // The 5th, at gateway 0: refused without a second reply in the window.
    expect((await post(0, { peer: "rater", content: "rate-4", messageId: "r4" })).status).toBe(200);
    await g.gateways[0]!.waitForLog((e: Record<string, any>) => e.peer === "rater" && /over the sender's rate/.test(String(e.msg)), 30_000);
    expect(modelRequestsWith("rate-3")).toHaveLength(0);
    expect(modelRequestsWith("rate-4")).toHaveLength(0);
    expect(repliesTo("r4")).toEqual([]);
  }, 120_000);
});

/** Starts a turn that calls `echo` over gateway `i`'s WebSocket; resolves once it is parked (its approval id). */
async function parkedTurn(i: number, marker: string) {
  const client = await RpcClient.connect(g.gateways[i]!.gateway.url);
  const turn = client.call("chat.send", { content: `use:echo {"text":"${marker}"}`, peer: marker });
  const ask = await g.platform.waitFor((r) => r.json?.peer === APPROVER && String(r.json?.content).includes(marker), 60_000);
  const id = /\[([a-z2-9]{6})\]/.exec(String(ask.json.content))![1]!;
  return { client, turn, id };
}

describe("approvals answered at any gateway", () => {
  it("a turn parked on gateway 0 is listed and approved at gateway 1 (`exoclaw approvals`) and resumes once", async () => {
    const { client, turn, id } = await parkedTurn(0, "launch-rpc");
    const listed = cli(1, ["approvals", "list", "--json"]);
    expect(listed.status, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout).approvals.map((a: { id: string }) => a.id)).toContain(id);
    const approved = cli(1, ["approvals", "approve", id]);
    expect(approved.status, approved.stderr).toBe(0);
    expect(approved.stdout).toContain(`approved ${id}`);
    const { response } = await turn;
    expect(response.msg.result.text).toBe("The answer is launch-rpc.");
    // A second answer, at either gateway, finds nothing.
    await expect(g.rpc(1, "approvals.deny", { id })).rejects.toThrow(/"code":-32602.*unknown_approval/);
    await expect(g.rpc(0, "approvals.approve", { id })).rejects.toThrow(/"code":-32602.*unknown_approval/);
    const sessionKey = response.msg.result.sessionKey as string;
    const events = await g.history(1, sessionKey);
    expect(events.filter((e: Record<string, any>) => e.kind === "approval_resolved").map((e: Record<string, any>) => e.data)).toEqual([
      { id, approved: true, by: expect.stringMatching(/^rpc:/) },
    ]);
    expect(events.filter((e: Record<string, any>) => e.kind === "tool_result")).toHaveLength(1);
    expect(modelRequestsWith("launch-rpc")).toHaveLength(2);
    expect(g.gateways[0]!.gateway.logs.some((l) => l.msg === "approval answer relayed by another gateway" && l.id === id)).toBe(true);
    client.close();
  }, 120_000);

  it("the approver's `approve <id>` consumed at the other gateway resumes it once; another peer's decides nothing", async () => {
    const p = partitionOf(inboundSubject({ channel: "webhook", account: "default", peer: APPROVER }), PARTITIONS);
    const owner = (await heldPartitions(g, 0)).includes(p) ? 0 : 1;
    expect(await heldPartitions(g, owner)).toContain(p);
    const holder = 1 - owner; // the turn parks where the approver's messages are not consumed
    const { client, turn, id } = await parkedTurn(holder, "launch-peer");
    // Mallory's `approve <id>` is an ordinary message: answered by the model, nothing decided.
    expect((await post(holder, { peer: "mallory", content: `approve ${id}`, messageId: "m1" })).status).toBe(200);
    expect((await replyTo("m1")).json.content).toBe(`You said: approve ${id}`);
    expect((await g.rpc(owner, "approvals.list")).approvals.map((a: { id: string }) => a.id)).toContain(id);
    // The approver, posted to the holder: consumed by the owner of its partition, relayed back.
    expect((await post(holder, { peer: APPROVER, content: `approve ${id}`, messageId: "b1" })).status).toBe(200);
    const confirmation = await replyTo("b1");
    expect(confirmation.json.content).toBe(`Approved ${id}.`);
    // Decided where the turn is parked, on the other gateway's request.
    expect(g.gateways[holder]!.gateway.logs.some((l) => l.msg === "approval answer relayed by another gateway" && l.id === id)).toBe(true);
    const { response } = await turn;
    expect(response.msg.result.text).toBe("The answer is launch-peer.");
    // A second `approve <id>` from the approver decides nothing: it is an ordinary message.
    expect((await post(owner, { peer: APPROVER, content: `approve ${id}`, messageId: "b2" })).status).toBe(200);
    expect((await replyTo("b2")).json.content).toBe(`You said: approve ${id}`);
    const events = await g.history(owner, response.msg.result.sessionKey as string);
    expect(events.filter((e: Record<string, any>) => e.kind === "approval_resolved").map((e: Record<string, any>) => e.data)).toEqual([
      { id, approved: true, by: `webhook:default:${APPROVER}` },
    ]);
    expect(events.filter((e: Record<string, any>) => e.kind === "tool_result")).toHaveLength(1);
    expect(modelRequestsWith("launch-peer")).toHaveLength(2);
    client.close();
  }, 120_000);
});

describe("NATS down", () => {
  it("a new stranger gets no code while NATS is down (an approved peer still passes), and one once it is back", async () => {
    const before = g.gateways[0]!.gateway.logs.length;
    await g.nats!.stop();
    await g.gateways[0]!.waitForLog(
      (e: Record<string, any>) => /NATS disconnected/.test(String(e.msg)) && g.gateways[0]!.gateway.logs.indexOf(e) >= before,
      30_000,
    );
    expect((await post(0, { peer: "stranger3", content: "hello", messageId: "n1" })).status).toBe(200);
    await g.gateways[0]!.waitForLog((e: Record<string, any>) => e.peer === "stranger3" && /could not record a pairing request/.test(String(e.msg)), 30_000);
    await g.gateways[0]!.waitForLog((e: Record<string, any>) => e.peer === "stranger3" && /not in the channel allowlist; dropped/.test(String(e.msg)), 30_000);
    // The peer approved earlier (gateway 0 read its approval) is still let in: spooled, answered later.
    expect((await post(0, { peer: "stranger1", content: "ping", messageId: "nf1" })).status).toBe(200);
    await g.gateways[0]!.waitForLog((e: Record<string, any>) => e.msgId === "channel:webhook:default:nf1" && e.storedIn === "spool", 30_000);
    // The operator's commands fail naming the store (nothing changed).
    await expect(g.rpc(1, "pairing.list")).rejects.toThrow(/"code":-32603.*exoclaw_pairing\) cannot be reached.*pairing_unavailable/);
    await g.nats!.restart();
    // Once gateway 0 is reconnected, the stranger's next message gets a code (polled: reconnecting takes a moment).
    let code: string | undefined;
    for (let i = 2; code === undefined && i < 40; i++) {
      expect((await post(0, { peer: "stranger3", content: `hello ${i}`, messageId: `n${i}` })).status).toBe(200);
      code = await replyTo(`n${i}`, 3_000)
        .then((r) => /pairing code is ([A-Z0-9]{4}-[A-Z0-9]{4})/.exec(String(r.json.content))?.[1])
        .catch(() => undefined);
    }
    expect(code).toBeDefined();
    expect(repliesTo("n1")).toEqual([]);
    expect((await replyTo("nf1", 60_000)).json.content).toBe("pong");
  }, 180_000);
});
