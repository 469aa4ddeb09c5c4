/**
 * The server-push hub (host/src/gateway/event-hub.ts) in process, over the real memory session
 * log watched by session-changes.ts and a real LogTail: session events pushed after the
 * client's cursor, once and in order; a slow connection (more queued than the soft limit) gets
 * nothing, and the missed events once it drained (its cursor stays: nothing piles up in memory);
 * snapshot topics computed once per tick for every subscriber and not at all without one; a
 * closed connection's subscriptions end; scopes like the mirrored methods.
 * The connection is the one boundary replaced: its `bufferedBytes` is what the test drives.
 */
import { describe, expect, it } from "vitest";
import { createEventMethods, EVENT_NOTIFICATION } from "../../host/src/gateway/event-hub.js";
import type { ClientIdentity } from "../../host/src/gateway/identity.js";
import type { MethodContext, MethodHandler } from "../../host/src/gateway/rpc.js";
import { SessionChanges, watchSessionLog } from "../../host/src/gateway/session-changes.js";
import type { Connection } from "../../host/src/gateway/types.js";
import { LogTail } from "../../host/src/log/index.js";
import { createMemorySessionLog } from "../../host/src/store/index.js";
import { waitUntil } from "../support/channel-gateway.js";

const ADMIN: ClientIdentity = { account: "default", scopes: new Set(["admin", "chat"]) as ClientIdentity["scopes"] };
const ALICE: ClientIdentity = { account: "alice", scopes: new Set(["chat"]) as ClientIdentity["scopes"] };

interface TestConn {
  ctx: MethodContext;
  pushes: { topic: string; data: any }[];
  buffered: number;
  close(): void;
}

let nextConn = 1;
function conn(identity: ClientIdentity): TestConn {
  const abort = new AbortController();
  const t: TestConn = {
    pushes: [],
    buffered: 0,
    close() {
      (c as { closed: boolean }).closed = true;
      abort.abort(new Error("gone"));
    },
  } as unknown as TestConn;
  const c: Connection = {
    id: nextConn++,
    remoteAddress: "127.0.0.1",
    identity,
    closed: false,
    send() {},
    bufferedBytes: () => t.buffered,
    close() {},
  };
  t.ctx = {
    conn: c,
    identity,
    requestId: 1,
    encoding: "msgpack",
    notify: (method, params) => {
      if (method === EVENT_NOTIFICATION) t.pushes.push(params as { topic: string; data: unknown });
    },
    signal: abort.signal,
  };
  return t;
}

function setup() {
  const changes = new SessionChanges();
  const log = watchSessionLog(createMemorySessionLog(), changes);
  const tail = new LogTail(100);
  let statusCalls = 0;
  const methods = new Map<string, MethodHandler>([["status", () => ({ n: ++statusCalls })]]);
  for (const [k, v] of createEventMethods({
    methods,
    log,
    changes,
    logTail: tail,
    statusIntervalMs: 20,
    sessionFlushMs: 20,
    logsIntervalMs: 20,
    snapshotIntervalMs: 20,
    softBufferedBytes: 1000,
  }))
    methods.set(k, v);
  const call = (c: TestConn, method: string, params: unknown) => Promise.resolve(methods.get(method)!(params, c.ctx));
  return { log, tail, call, statusCalls: () => statusCalls };
}

const KEY = "agent:main:ws:alice:tab";
const say = (content: string) => ({ kind: "message_received" as const, data: { content, channel: "ws", account: "alice", peer: "tab" } });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("events.subscribe", () => {
  it("pushes a session's new events after the cursor, once and in order; a slow connection gets them once it drained", async () => {
    const { log, call } = setup();
    await log.append(KEY, [say("before")]);
    const c = conn(ALICE);
    expect(await call(c, "events.subscribe", { topics: [`session:${KEY}`] })).toEqual({ topics: [`session:${KEY}`] });
    await log.append(KEY, [say("one")]);
    await log.append(KEY, [say("two")]);
    await waitUntil(() => c.pushes.flatMap((p) => p.data.events).length >= 2, 5000, "two pushed events");
    const seen = () => c.pushes.flatMap((p) => p.data.events.map((e: any) => e.data.content));
    expect(seen()).toEqual(["one", "two"]);

    // Slow: over the soft limit, nothing is pushed and nothing is queued; the cursor stays.
    c.buffered = 10_000;
    const before = c.pushes.length;
    for (let i = 0; i < 5; i++) await log.append(KEY, [say(`slow ${i}`)]);
    await sleep(200);
    expect(c.pushes.length).toBe(before);
    c.buffered = 0;
    await waitUntil(() => seen().length === 7, 5000, "the missed events");
    expect(seen()).toEqual(["one", "two", "slow 0", "slow 1", "slow 2", "slow 3", "slow 4"]);
    expect(c.pushes.length).toBe(before + 1); // in one push, from the cursor

    // Deleted: said at once.
    await log.delete(KEY);
    await waitUntil(() => c.pushes.some((p) => p.data.deleted === true), 5000, "deleted");
  });

  it("starts after the `after` cursor when given (events already stored come first)", async () => {
    const { log, call } = setup();
    await log.append(KEY, [say("a"), say("b"), say("c")]);
    const c = conn(ADMIN);
    await call(c, "events.subscribe", { topics: [`session:${KEY}`], after: { [`session:${KEY}`]: 1 } });
    await waitUntil(() => c.pushes.length > 0, 5000, "a push");
    expect(c.pushes[0]!.data.events.map((e: any) => e.seq)).toEqual([2, 3]);
  });

  it("computes a snapshot topic once per tick for every subscriber, and not at all without one; a closed connection's topics end", async () => {
    const { call, statusCalls } = setup();
    await sleep(100);
    expect(statusCalls()).toBe(0); // nobody subscribed: nothing computed
    const a = conn(ADMIN);
    const b = conn(ALICE);
    await call(a, "events.subscribe", { topics: ["status"] });
    await call(b, "events.subscribe", { topics: ["status"] });
    await waitUntil(() => a.pushes.length >= 5 && b.pushes.length >= 5, 5000, "status pushes");
    // Two subscribe-time snapshots, then one computation per tick shared by both.
    const ticks = statusCalls() - 2;
    expect(ticks).toBeLessThanOrEqual(Math.max(a.pushes.length, b.pushes.length));
    expect(a.pushes.filter((p) => p.topic === "status").length + b.pushes.length).toBeGreaterThan(ticks);
    expect(await call(a, "events.unsubscribe", { topics: ["status"] })).toEqual({ topics: [] });
    b.close();
    const n = statusCalls();
    await sleep(150);
    expect(statusCalls()).toBe(n); // the last subscriber left: the timer stopped
  });

  it("pushes log lines at or above the topic's level, and names changed sessions (a chat client only its own)", async () => {
    const { log, tail, call } = setup();
    const admin = conn(ADMIN);
    const alice = conn(ALICE);
    await call(admin, "events.subscribe", { topics: ["logs:warn", "sessions"] });
    await call(alice, "events.subscribe", { topics: ["sessions"] });
    tail.push('{"level":30,"msg":"info line"}\n{"level":40,"msg":"warn line"}\n');
    await log.append(KEY, [say("x")]);
    await log.append("agent:main:telegram:default:bob", [
      { kind: "message_received", data: { content: "y", channel: "telegram", account: "default", peer: "bob" } },
    ]);
    await waitUntil(() => admin.pushes.some((p) => p.topic === "logs:warn"), 5000, "log push");
    const lines = admin.pushes.filter((p) => p.topic === "logs:warn").flatMap((p) => p.data.lines.map((l: any) => JSON.parse(l.line).msg));
    expect(lines).toEqual(["warn line"]);
    await waitUntil(() => admin.pushes.filter((p) => p.topic === "sessions").flatMap((p) => p.data.sessionKeys).length >= 2, 5000, "sessions push");
    await waitUntil(() => alice.pushes.length > 0, 5000, "alice's push");
    expect(alice.pushes.flatMap((p) => p.data.sessionKeys)).toEqual([KEY]);
    // With their rows (as sessions.list gives them), read once for both: a list is patched, not read again.
    expect(alice.pushes.flatMap((p) => p.data.sessions)).toEqual([expect.objectContaining({ sessionKey: KEY, channel: "ws", peer: "tab", lastSeq: 1 })]);
    const adminRows = admin.pushes.filter((p) => p.topic === "sessions").flatMap((p) => p.data.sessions);
    expect(adminRows.map((r: any) => r.sessionKey).sort()).toEqual(["agent:main:telegram:default:bob", KEY]);
    // A deleted session: its key, no row.
    const before = alice.pushes.length;
    await log.delete(KEY);
    await waitUntil(() => alice.pushes.length > before, 5000, "the deletion pushed");
    expect(alice.pushes.at(-1)!.data).toEqual({ sessionKeys: [KEY], sessions: [] });
  });

  it("checks scopes like the mirrored methods, and refuses unknown topics", async () => {
    const { call } = setup();
    const alice = conn(ALICE);
    await expect(call(alice, "events.subscribe", { topics: ["logs"] })).rejects.toMatchObject({ code: -32010 });
    await expect(call(alice, "events.subscribe", { topics: ["session:agent:main:telegram:default:bob"] })).rejects.toMatchObject({ code: -32010 });
    await expect(call(alice, "events.subscribe", { topics: ["session:agent:main:ws:bob:tab"] })).rejects.toMatchObject({ code: -32010 });
    await expect(call(alice, "events.subscribe", { topics: ["weather"] })).rejects.toMatchObject({ code: -32602 });
    await expect(call(alice, "events.subscribe", { topics: ["session:nonsense"] })).rejects.toMatchObject({ code: -32602 });
    // A refused topic adds none of the others.
    await expect(call(alice, "events.subscribe", { topics: ["status", "logs"] })).rejects.toMatchObject({ code: -32010 });
    expect(await call(alice, "events.unsubscribe", { topics: ["status"] })).toEqual({ topics: [] });
    expect(await call(alice, "events.subscribe", { topics: ["status", `session:${KEY}`] })).toEqual({ topics: ["status", `session:${KEY}`] });
  });
});
