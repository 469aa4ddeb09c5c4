// Stopping a turn that runs on another gateway of the bus (2 gateway processes, one real
// nats-server): `chat.abort {sessionKey}` and `{runId}` sent to the gateway a WebSocket turn does
// not run on stop it (the provider request is closed, the client gets -32006, the log is closed);
// another client (scope chat) cannot stop it that way; a webhook peer's `/stop` posted to the
// gateway that does not own the peer's partition stops the turn running on the owner. Nothing
// is timed.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { inboundSubject, partitionOf } from "../../host/src/bus/subjects.js";
import { waitUntil } from "../support/channel-gateway.js";
import { heldPartitions, startBusGateways, waitForPartitionsSpread, webhookSessionKey, type BusGateways } from "../support/bus-gateways.js";
import { RpcClient } from "../support/gateway.js";

const PARTITIONS = 4;
const BOB_TOKEN = "bob-token-0123456789abcdef";
const bodyHas = (marker: string) => (r: { body: unknown }) => JSON.stringify(r.body).includes(marker);
const SLOW = "SLOW_200MS one two three four five six seven eight nine ten eleven twelve";

let g: BusGateways;

beforeAll(async () => {
  g = await startBusGateways({
    gateways: 2,
    bus: { partitions: PARTITIONS },
    config: {
      // Nothing but a stop ends a turn here.
      agents: [{ id: "main", provider: "anthropic", idle_timeout_ms: 3_600_000, turn_timeout_ms: 3_600_000 }],
      // The harness's webhook intake settings, plus another client (its own account, scope chat).
      gateway: { webhooks: { per_address_rate: 0, per_address_in_flight: 100_000 }, clients: [{ name: "bob", token: BOB_TOKEN, scopes: ["chat"] }] },
    },
  });
  await waitForPartitionsSpread(g, [0, 1], PARTITIONS);
}, 180_000);

afterAll(async () => {
  await g?.stop();
});

/** Starts a slow turn on gateway 0 over its own connection; resolves once its first text arrived. */
async function slowTurn(marker: string, peer: string) {
  const sender = await RpcClient.connect(g.gateways[0]!.gateway.url);
  const turn = sender.call("chat.send", { content: `${SLOW} ${marker}`, peer });
  const first = await sender.waitFor((r) => r.msg.method === "chat.event" && r.msg.params.type === "text");
  const { runId, sessionKey } = first.msg.params as { runId: string; sessionKey: string };
  return { sender, turn, runId, sessionKey };
}

describe("stopping a turn on another gateway", () => {
  it("chat.abort {sessionKey} on gateway 1 stops a WebSocket turn running on gateway 0", async () => {
    const { sender, turn, runId, sessionKey } = await slowTurn("mark-x1", "x1");
    expect(await g.rpc(1, "chat.abort", { sessionKey })).toEqual({ aborted: [runId] });
    const { response } = await turn;
    expect(response.msg.error).toEqual({ code: -32006, message: "turn stopped by chat.abort", data: { reason: "stopped", by: "chat.abort" } });
    await g.emulator.waitForAbandoned(bodyHas("mark-x1"));
    const log = (await g.history(1, sessionKey)).filter((e) => e.runId === runId);
    expect(log.map((e) => e.kind)).toEqual(["message_received", "turn_started", "assistant_text", "error"]);
    // Nothing left to stop anywhere; the session answers its next message.
    expect(await g.rpc(1, "chat.abort", { sessionKey })).toEqual({ aborted: [] });
    expect((await sender.call("chat.send", { content: "ping", peer: "x1" })).response.msg.result.text).toBe("pong");
    sender.close();
  }, 120_000);

  it("chat.abort {runId} on gateway 1 stops it too; another client's chat.abort {runId} is refused", async () => {
    const { sender, turn, runId } = await slowTurn("mark-x2", "x2");
    const bob = await RpcClient.connect(g.gateways[1]!.gateway.url, { authorization: `Bearer ${BOB_TOKEN}` });
    const refused = await bob.call("chat.abort", { runId });
    expect(refused.response.msg.error).toMatchObject({ code: -32010 });
    bob.close();
    expect(await g.rpc(1, "chat.abort", { runId })).toEqual({ aborted: [runId] });
    expect((await turn).response.msg.error).toMatchObject({ code: -32006, data: { reason: "stopped", by: "chat.abort" } });
    sender.close();
  }, 120_000);

  it("a webhook peer's /stop posted to the gateway that does not run its turn stops it there and is answered", async () => {
    const peer = "stopper";
    const p = partitionOf(inboundSubject({ channel: "webhook", account: "default", peer }), PARTITIONS);
    const owner = (await heldPartitions(g, 0)).includes(p) ? 0 : 1;
    expect(await heldPartitions(g, owner)).toContain(p);
    const other = 1 - owner;
    expect((await g.post(other, { peer, content: `${SLOW} mark-stop`, messageId: "st1" })).status).toBe(200);
    await waitUntil(() => g.emulator.requests.some(bodyHas("mark-stop")), 30_000, "request mark-stop");
    expect((await g.post(other, { peer, content: "/stop", messageId: "st2" })).status).toBe(200);
    const answer = await g.platform.waitFor((r) => r.json?.replyTo === "st2", 30_000);
    expect(answer.json.content).toBe("Stopped.");
    expect(g.senderOf(answer)).toBe(other);
    await g.emulator.waitForAbandoned(bodyHas("mark-stop"));
    // The turn ran on the owner and was closed there with the stop's error; /stop is no message.
    const events = await g.history(other, webhookSessionKey(peer));
    expect(events.filter((e) => e.kind === "message_received").map((e) => e.data.content)).toEqual([`${SLOW} mark-stop`]);
    expect(events.filter((e) => e.kind === "error").map((e) => e.data)).toEqual([{ code: -32006, message: "turn stopped by /stop" }]);
    expect(g.gateways[owner]!.gateway.logs.some((l) => l.msg === "turn stopped on request of another gateway")).toBe(true);
    // The next message is answered, and nothing is left to stop.
    expect((await g.post(other, { peer, content: "ping", messageId: "st3" })).status).toBe(200);
    expect((await g.platform.waitFor((r) => r.json?.replyTo === "st3", 30_000)).json.content).toBe("pong");
    expect((await g.post(owner, { peer, content: "/stop", messageId: "st4" })).status).toBe(200);
    expect((await g.platform.waitFor((r) => r.json?.replyTo === "st4", 30_000)).json.content).toBe("Nothing to stop.");
    // The stopped message got no failure notice.
    expect(g.platform.requests.filter((r) => r.json?.replyTo === "st1")).toEqual([]);
  }, 120_000);
});
