/**
 * Crash test: a gateway on the embedded SurrealDB store is killed with SIGKILL while 20 sessions
 * are streaming, then restarted on the same state directory. Every accepted message must be
 * answered exactly once or marked failed, and histories must be intact and ordered.
 *
 * There are no channel plugins yet, so "redelivery" is exercised through the WebSocket
 * `idempotencyKey`: after the restart the client resends every message with its original key.
 * (Platform message ids use the same store mechanism — a unique index and a lookup — and are
 * covered by the store suite, tests/store/session-log.suite.ts.)
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEmulator, type Emulator, type RecordedRequest } from "../support/emulator/server.mjs";
import { RpcClient, startGateway, type GatewayHandle } from "../support/gateway.js";

const SESSIONS = 20;
const INTERRUPTED = /turn interrupted: the gateway stopped while this turn was running/;

let emulator: Emulator;
let state: string;
let gateway: GatewayHandle | undefined;

const env = () => ({ ANTHROPIC_API_KEY: "sk-test", ANTHROPIC_BASE_URL: emulator.url, EXOCLAW_STATE_DIR: state });
const peer = (i: number) => `crash-${i}`;
const key = (i: number) => `agent:main:ws:default:${peer(i)}`;
const content = (i: number, n: 1 | 2 | 3 | 4) =>
  n === 1
    ? `first message of session ${i}`
    : n === 2
      ? `second message of session ${i} SLOW_150MS streams slowly`
      : n === 3
        ? `third message of session ${i}`
        : `fourth message of session ${i}`;
const idem = (i: number, n: number) => `crash-key-${i}-${n}`;

function lastUserText(r: RecordedRequest): string {
  const m = (r.body.messages as { role: string; content: unknown }[]).filter((x) => x.role === "user").at(-1)!;
  return typeof m.content === "string"
    ? m.content
    : (m.content as { type: string; text?: string }[])
        .filter((b) => b.type === "text")
        .map((b) => b.text)
        .join("");
}

beforeAll(async () => {
  emulator = await startEmulator();
  state = mkdtempSync(join(tmpdir(), "exoclaw-crash-"));
});
afterAll(async () => {
  await gateway?.stop();
  await emulator?.close();
  rmSync(state, { recursive: true, force: true });
});

describe("kill -9 in the middle of streaming", () => {
  it("answers every accepted message exactly once or marks it failed; histories stay intact", async () => {
    gateway = await startGateway(env());
    const client = await RpcClient.connect(gateway.url);

    // Phase 1: one completed turn per session.
    const firsts = await Promise.all(
      Array.from({ length: SESSIONS }, (_, i) => client.call("chat.send", { content: content(i, 1), peer: peer(i), idempotencyKey: idem(i, 1) })),
    );
    for (const f of firsts) expect(f.response.msg.result?.text).toMatch(/^You said: first message/);

    // Phase 2: a slow turn per session, and a third one queued behind it.
    for (let i = 0; i < SESSIONS; i++) {
      void client.call("chat.send", { content: content(i, 2), peer: peer(i), idempotencyKey: idem(i, 2) }).catch(() => undefined);
      void client.call("chat.send", { content: content(i, 3), peer: peer(i), idempotencyKey: idem(i, 3) }).catch(() => undefined);
    }
    // Every session's second turn is streaming (its first text delta arrived): kill -9.
    const streaming = (i: number) =>
      client.received.some(
        (r) =>
          r.msg.method === "chat.event" &&
          r.msg.params.sessionKey === key(i) &&
          r.msg.params.type === "text" &&
          r.msg.params.runId !== firsts[i]!.response.msg.result.runId,
      );
    for (let t = 0; t < 500 && !Array.from({ length: SESSIONS }, (_, i) => streaming(i)).every(Boolean); t++) await new Promise((r) => setTimeout(r, 10));
    expect(Array.from({ length: SESSIONS }, (_, i) => streaming(i)).every(Boolean)).toBe(true);
    const responsesBeforeKill = client.received.filter((r) => r.msg.id !== undefined && ("result" in r.msg || "error" in r.msg)).length;
    gateway.proc.kill("SIGKILL");
    await new Promise((r) => gateway!.proc.once("exit", r));
    client.close(); // the pending calls are never answered (they time out later, caught)
    expect(responsesBeforeKill).toBe(SESSIONS); // only the first turns were answered

    // Restart on the same state directory: recovery runs before the gateway listens.
    gateway = await startGateway(env());
    const recovered = gateway.logs.find((l) => l.msg === "recovered turns left unfinished by the previous gateway process");
    expect(recovered).toMatchObject({ failed: SESSIONS });
    const rerun = recovered!.rerun as number; // third turns whose message was journaled before the kill
    const c2 = await RpcClient.connect(gateway.url);

    // The client resends every message with its original key.
    const resent = await Promise.all(
      Array.from({ length: SESSIONS }, (_, i) =>
        Promise.all(([1, 2, 3] as const).map((n) => c2.call("chat.send", { content: content(i, n), peer: peer(i), idempotencyKey: idem(i, n) }))),
      ),
    );
    let replayedThirds = 0;
    for (let i = 0; i < SESSIONS; i++) {
      const [r1, r2, r3] = resent[i]!.map((r) => r.response.msg);
      expect(r1.result).toEqual({ ...firsts[i]!.response.msg.result, replayed: true });
      expect(r2.error).toMatchObject({ code: -32006, data: { replayed: true } });
      expect(r2.error.message).toMatch(INTERRUPTED);
      expect(r3.result?.text).toBe(`You said: ${content(i, 3)}`);
      if (r3.result.replayed) replayedThirds++;
    }
    expect(replayedThirds).toBe(rerun);

    // Exactly once, in the log: one message per key, one terminator per run, seqs 1..n.
    for (let i = 0; i < SESSIONS; i++) {
      const events = (await c2.call("chat.history", { sessionKey: key(i), limit: 1000 })).response.msg.result.events as any[];
      expect(events.map((e) => e.seq)).toEqual(events.map((_, j) => j + 1));
      const messages = events.filter((e) => e.kind === "message_received");
      expect(messages.map((m) => m.data.idempotencyKey)).toEqual([idem(i, 1), idem(i, 2), idem(i, 3)]);
      const outcome = (m: any) => events.filter((e) => e.runId === m.runId && (e.kind === "turn_ended" || e.kind === "error"));
      expect(messages.map((m) => outcome(m).map((e) => e.kind))).toEqual([["turn_ended"], ["error"], ["turn_ended"]]);
      expect(outcome(messages[1]).at(0).data).toMatchObject({ code: -32006 });
      // Ordered: each turn starts after the previous one ended.
      const startOf = (m: any) => events.find((e) => e.kind === "turn_started" && e.runId === m.runId).seq;
      expect(startOf(messages[0])).toBeLessThan(startOf(messages[1]));
      expect(outcome(messages[0])[0].seq).toBeLessThan(startOf(messages[1]));
      expect(startOf(messages[1])).toBeLessThan(startOf(messages[2]));
    }

    // Never run twice: each second turn reached the model once (before the kill), each third once.
    for (let i = 0; i < SESSIONS; i++) {
      expect(emulator.requests.filter((r) => lastUserText(r) === content(i, 2))).toHaveLength(1);
      expect(emulator.requests.filter((r) => lastUserText(r) === content(i, 3))).toHaveLength(1);
    }

    // The sessions go on with the history a client would expect: turns 1 and 3, not the failed 2.
    emulator.reset();
    const fourths = await Promise.all(Array.from({ length: SESSIONS }, (_, i) => c2.call("chat.send", { content: content(i, 4), peer: peer(i) })));
    for (let i = 0; i < SESSIONS; i++) {
      expect(fourths[i]!.response.msg.result.text).toBe(`You said: ${content(i, 4)}`);
      const req = emulator.requests.find((r) => lastUserText(r) === content(i, 4))!;
      const sent = JSON.stringify(req.body.messages);
      expect(sent).toContain(content(i, 1));
      expect(sent).toContain(content(i, 3));
      expect(sent).not.toContain(content(i, 2));
    }
    c2.close();
  });
});
