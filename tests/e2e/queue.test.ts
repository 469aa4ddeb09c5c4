// End to end: sessions under load, through the real gateway process and real WebSocket clients.
// A burst of 50 messages into one session is answered in order with none lost; 50 sessions in
// parallel finish in about the time of one (the emulator's SLOW_<n>MS rule makes each model
// call take a known time, so the comparison measures the gateway's concurrency, not the model).
// Agents bound to their own peers show the `collect` and `interrupt` queue modes in the process.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startChannelGateway, type ChannelGateway } from "../support/channel-gateway.js";
import { RpcClient } from "../support/gateway.js";

let gw: ChannelGateway;

beforeAll(async () => {
  gw = await startChannelGateway({
    config: {
      agents: [
        { id: "main", provider: "anthropic", model: "emu-queue", tools: [], queue: { mode: "followup", cap: 64, drop: "new" } },
        { id: "collector", provider: "anthropic", model: "emu-collect", tools: [], queue: { mode: "collect" } },
        { id: "impatient", provider: "anthropic", model: "emu-interrupt", tools: [], queue: { mode: "interrupt" } },
      ],
      default_agent: "main",
      bindings: [
        { agent: "collector", peer: "collector" },
        { agent: "impatient", peer: "impatient" },
      ],
    },
  });
}, 60_000);

afterAll(async () => {
  await gw?.stop();
});

type Result = { runId: string; sessionKey: string; text: string };

describe("sessions under load", () => {
  it("a burst of 50 messages into one session is answered in order, none lost", async () => {
    const client = await RpcClient.connect(gw.gateway.url);
    const completion: number[] = [];
    const calls = Array.from({ length: 50 }, (_, i) =>
      client.call("chat.send", { content: `burst message ${i}`, peer: "burst" }).then(({ response }) => {
        completion.push(i);
        return response.msg;
      }),
    );
    const answers = await Promise.all(calls);
    for (const [i, a] of answers.entries()) {
      expect(a.error, `message ${i}: ${JSON.stringify(a.error)}`).toBeUndefined();
      expect((a.result as Result).text).toBe(`You said: burst message ${i}`);
    }
    // Turns ran one at a time, in arrival order.
    expect(completion).toEqual([...Array(50).keys()]);
    const modelOrder = gw.emulator.requests.map((r) => JSON.stringify(r.body.messages.at(-1))).filter((s) => s.includes("burst message"));
    expect(modelOrder.map((s) => Number(/burst message (\d+)/.exec(s)![1]))).toEqual([...Array(50).keys()]);
    // The 50th call saw the 49 earlier exchanges: nothing was lost from the history either.
    const last = gw.emulator.requests.filter((r) => JSON.stringify(r.body.messages.at(-1)).includes("burst message 49"))[0]!;
    expect(last.body.messages).toHaveLength(99);

    // The session log holds every message and its own reply (same run id), and the turns ran
    // one after another in arrival order.
    const sessionKey = (answers[0]!.result as Result).sessionKey;
    const events: { seq: number; kind: string; runId?: string; data: any }[] = [];
    for (let after = 0; ; ) {
      const { response } = await client.call("chat.history", { sessionKey, afterSeq: after, limit: 1000 });
      const page = response.msg.result.events as { seq: number; kind: string; runId?: string; data: any }[];
      events.push(...page);
      if (page.length < 1000) break;
      after = page.at(-1)!.seq;
    }
    const messages = events.filter((e) => e.kind === "message_received");
    expect(messages.map((e) => e.data.content)).toEqual([...Array(50).keys()].map((i) => `burst message ${i}`));
    const replies = new Map(events.filter((e) => e.kind === "assistant_text").map((e) => [e.runId, e.data.text]));
    for (const m of messages) expect(replies.get(m.runId)).toBe(`You said: ${m.data.content}`);
    const starts = events.filter((e) => e.kind === "turn_started").map((e) => e.runId);
    expect(starts).toEqual(messages.map((m) => m.runId));
    const lifecycle = events.filter((e) => e.kind === "turn_started" || e.kind === "turn_ended").map((e) => `${e.kind}:${e.runId}`);
    expect(lifecycle).toEqual(messages.flatMap((m) => [`turn_started:${m.runId}`, `turn_ended:${m.runId}`]));
    client.close();
  }, 120_000);

  it("50 sessions in parallel finish in about the time of one", async () => {
    const N = 50;
    const clients = await Promise.all(Array.from({ length: N }, () => RpcClient.connect(gw.gateway.url)));
    // The emulator streams each reply's SSE frames 100 ms apart: about 0.9 s per turn.
    const turn = async (client: RpcClient, peer: string) => {
      const { response } = await client.call("chat.send", { content: `SLOW_100MS ${peer}`, peer });
      expect(response.msg.error, JSON.stringify(response.msg.error)).toBeUndefined();
      expect(response.msg.result.text).toBe(`You said: SLOW_100MS ${peer}`);
    };
    // One session alone (best of 3, after a warm-up turn).
    await turn(clients[0]!, "solo-warm");
    const singles: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      await turn(clients[0]!, `solo-${i}`);
      singles.push(performance.now() - t0);
    }
    const single = Math.min(...singles);
    const t0 = performance.now();
    await Promise.all(clients.map((c, i) => turn(c, `parallel-${i}`)));
    const parallel = performance.now() - t0;
    console.log(
      `one session: ${single.toFixed(0)} ms (runs: ${singles.map((s) => s.toFixed(0)).join(", ")}); ${N} sessions in parallel: ${parallel.toFixed(0)} ms (${(parallel / single).toFixed(2)}x one; sequential would be ~${N}x)`,
    );
    expect(single).toBeGreaterThanOrEqual(280);
    expect(parallel).toBeLessThan(10 * single);
    for (const c of clients) c.close();
  }, 120_000);

  it("collect: messages queued behind a turn are answered by one model call that sees them all", async () => {
    const client = await RpcClient.connect(gw.gateway.url);
    const first = client.call("chat.send", { content: "SLOW_50MS collect opener", peer: "collector" });
    await waitFor(() => gw.emulator.requests.some((r) => JSON.stringify(r.body).includes("collect opener")));
    const later = ["collect one", "collect two", "collect three"].map((content) => client.call("chat.send", { content, peer: "collector" }));
    const answers = [await first, ...(await Promise.all(later))].map((c) => c.response.msg);
    for (const a of answers) expect(a.error, JSON.stringify(a.error)).toBeUndefined();
    const calls = gw.emulator.requests.filter((r) => r.body.model === "emu-collect");
    expect(calls).toHaveLength(2);
    const merged = "collect one\n\ncollect two\n\ncollect three";
    expect(
      calls[1]!.body.messages
        .at(-1)
        .content.map((b: { text: string }) => b.text)
        .join(""),
    ).toBe(merged);
    // Every folded message is answered with the one reply (the gateway does not run three turns).
    for (const a of answers.slice(1)) expect(a.result.text).toBe(`You said: ${merged}`);
    client.close();
  }, 60_000);

  it("interrupt: a new message aborts the running turn, which fails with -32006, and is answered", async () => {
    const client = await RpcClient.connect(gw.gateway.url);
    const t0 = performance.now();
    const slow = client.call("chat.send", { content: "SLOW_2000MS a very long story", peer: "impatient" });
    await waitFor(() => gw.emulator.requests.some((r) => JSON.stringify(r.body).includes("a very long story")));
    const { response } = await client.call("chat.send", { content: "stop, just say hi", peer: "impatient" });
    expect(response.msg.result.text).toBe("You said: stop, just say hi");
    const interrupted = (await slow).response.msg;
    expect(interrupted.error).toMatchObject({ code: -32006 });
    expect(interrupted.error.message).toContain("interrupted");
    // The slow reply alone would stream for ~20 s.
    expect(performance.now() - t0).toBeLessThan(10_000);
    client.close();
  }, 60_000);
});

async function waitFor(cond: () => boolean, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 5));
  }
}
