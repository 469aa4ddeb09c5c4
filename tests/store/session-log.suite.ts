/**
 * The behaviour every SessionLog back end must have. Run by memory.test.ts, surreal-mem.test.ts
 * and surreal-kv.test.ts with their own factory.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { ChatMessage } from "../../host/src/agent/types.js";
import {
  DuplicateEventError,
  formatSessionKey,
  SeqConflictError,
  StoreError,
  type NewSessionEvent,
  type SessionLog,
  type SessionLogOptions,
} from "../../host/src/store/index.js";
import { COMPACTION_SUMMARY_ACK, COMPACTION_SUMMARY_PREFIX, forgetPeer, projectHistory } from "../../host/src/agent/index.js";

export type LogFactory = (options?: SessionLogOptions) => Promise<SessionLog>;

const key = (peer: string, agent = "main", channel = "telegram", account = "bot1") => formatSessionKey({ agent, channel, account, peer });

const msg = (
  content: string,
  extra: Partial<{ platformMessageId: string; idempotencyKey: string; channel: string; account: string }> = {},
  runId?: string,
): NewSessionEvent => ({
  kind: "message_received",
  data: { content, channel: extra.channel ?? "telegram", account: extra.account ?? "bot1", peer: "p", ...extra },
  ...(runId ? { runId } : {}),
});
const text = (t: string, runId?: string): NewSessionEvent => ({ kind: "assistant_text", data: { text: t }, ...(runId ? { runId } : {}) });
const started = (runId: string): NewSessionEvent => ({ kind: "turn_started", data: { runId }, runId });
const ended = (runId: string): NewSessionEvent => ({ kind: "turn_ended", data: { runId, stopReason: "end_turn" }, runId });
const failed = (runId: string): NewSessionEvent => ({ kind: "error", data: { code: -32000, message: "provider failed" }, runId });

/** A complete turn: user message, text, one tool round trip, final text. */
function toolTurn(runId: string, question: string): NewSessionEvent[] {
  return [
    msg(question, {}, runId),
    started(runId),
    text("Let me compute.", runId),
    { kind: "tool_use", data: { id: `tu-${runId}`, name: "calc", input: { expr: "6*7" } }, runId },
    { kind: "usage", data: { inputTokens: 10, outputTokens: 5 }, runId },
    { kind: "tool_result", data: { toolUseId: `tu-${runId}`, content: "42", isError: false }, runId },
    text("The answer is 42.", runId),
    ended(runId),
  ];
}

export function sessionLogSuite(name: string, factory: LogFactory): void {
  describe(`SessionLog: ${name}`, () => {
    const open: SessionLog[] = [];
    let clock = 1_700_000_000_000;
    const make = async (options: SessionLogOptions = {}) => {
      const log = await factory({ now: () => clock, ...options });
      open.push(log);
      return log;
    };
    afterEach(async () => {
      await Promise.all(open.splice(0).map((l) => l.close()));
    });

    it("appends events with seqs from 1 and reads them back in order", async () => {
      const log = await make();
      const k = key("u1");
      expect(await log.append(k, [msg("hello"), started("r1")])).toEqual([1, 2]);
      clock += 5;
      expect(await log.append(k, [{ ...text("hi there"), at: 123 }, ended("r1")])).toEqual([3, 4]);
      expect(await log.append(k, [])).toEqual([]);
      const events = await log.read(k);
      expect(events.map((e) => [e.seq, e.kind])).toEqual([
        [1, "message_received"],
        [2, "turn_started"],
        [3, "assistant_text"],
        [4, "turn_ended"],
      ]);
      expect(events[0]).toEqual({
        sessionKey: k,
        seq: 1,
        kind: "message_received",
        data: { content: "hello", channel: "telegram", account: "bot1", peer: "p" },
        at: 1_700_000_000_000,
      });
      expect(events[1]!.runId).toBe("r1");
      expect(events[2]!.at).toBe(123);
      expect(events[3]!.at).toBe(1_700_000_000_005);
      const info = await log.info(k);
      expect(info).toEqual({
        sessionKey: k,
        agent: "main",
        channel: "telegram",
        account: "bot1",
        peer: "u1",
        lastSeq: 4,
        resetSeq: 0,
        createdAt: 1_700_000_000_000,
        updatedAt: 1_700_000_000_005,
      });
      expect(await log.read(key("nobody"))).toEqual([]);
      expect(await log.info(key("nobody"))).toBeUndefined();
    });

    it("appendEvents returns the events exactly as a read returns them", async () => {
      const log = await make({ redact: true });
      const k = key("stored");
      await log.append(k, [text("before")]);
      const stored = await log.appendEvents(k, [
        msg("my key is sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123", {}, "r1"),
        { kind: "tool_use", data: { id: "t", name: "n", input: { a: [1, { b: null }] } }, runId: "r1" },
        started("r1"),
      ]);
      expect(stored.map((e) => e.seq)).toEqual([2, 3, 4]);
      expect(stored).toEqual(await log.read(k, { afterSeq: 1 }));
      expect(JSON.stringify(stored)).not.toContain("sk-ant-api03");
      expect(await log.appendEvents(k, [])).toEqual([]);
    });

    it("returns copies: mutating what was passed in or read back changes nothing stored", async () => {
      const log = await make();
      const k = key("copies");
      const input = { nested: { list: [1, 2] } };
      const events: NewSessionEvent[] = [msg("original"), { kind: "tool_use", data: { id: "t1", name: "calc", input } }];
      await log.append(k, events);
      input.nested.list.push(3);
      (events[0]!.data as { content: string }).content = "changed";
      const read = await log.read(k);
      (read[0]!.data as { content: string }).content = "changed again";
      ((read[1]!.data as { input: typeof input }).input.nested.list as number[]).push(4);
      const again = await log.read(k);
      expect((again[0]!.data as { content: string }).content).toBe("original");
      expect((again[1]!.data as { input: unknown }).input).toEqual({ nested: { list: [1, 2] } });
      const history = await log.readHistory(k);
      (history[0]!.data as { content: string }).content = "x";
      expect(((await log.readHistory(k))[0]!.data as { content: string }).content).toBe("original");
    });

    it("keeps arbitrary tool input and empty strings intact", async () => {
      const log = await make();
      const k = key("u-json");
      const input = { a: [1, 2.5, -3], nested: { s: "x:y%z", t: true, n: null }, unicode: "héllo 🌍", empty: "" };
      await log.append(k, [
        { kind: "tool_use", data: { id: "t1", name: "x", input } },
        { kind: "assistant_text", data: { text: "" } },
      ]);
      const [use, empty] = await log.read(k);
      expect(use!.data).toEqual({ id: "t1", name: "x", input });
      expect(empty!.data).toEqual({ text: "" });
    });

    it("paginates reads with afterSeq and limit", async () => {
      const log = await make();
      const k = key("u2");
      await log.append(
        k,
        Array.from({ length: 25 }, (_, i) => text(`t${i + 1}`)),
      );
      expect((await log.read(k, { limit: 10 })).map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      expect((await log.read(k, { afterSeq: 20 })).map((e) => e.seq)).toEqual([21, 22, 23, 24, 25]);
      expect((await log.read(k, { afterSeq: 10, limit: 3 })).map((e) => e.seq)).toEqual([11, 12, 13]);
      expect(await log.read(k, { afterSeq: 25 })).toEqual([]);
      expect(await log.read(k, { limit: 0 })).toEqual([]);
      await expect(log.read(k, { afterSeq: -1 })).rejects.toMatchObject({ code: "invalid_argument" });
      await expect(log.read(k, { limit: Number.NaN })).rejects.toMatchObject({ code: "invalid_argument" });
      const all: number[] = [];
      for (let after = 0; ; ) {
        const page = await log.read(k, { afterSeq: after, limit: 7 });
        if (page.length === 0) break;
        all.push(...page.map((e) => e.seq));
        after = page[page.length - 1]!.seq;
      }
      expect(all).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
    });

    it("serializes 200 parallel appends to one session: seqs 1..200, no gap, no duplicate", async () => {
      const log = await make();
      const k = key("busy");
      const results = await Promise.all(Array.from({ length: 200 }, (_, i) => log.append(k, [text(`n${i}`)])));
      const seqs = results.map((r) => r[0]!);
      expect([...seqs].sort((a, b) => a - b)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
      const events = await log.read(k);
      expect(events.map((e) => e.seq)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
      // Each append got the seq its own event was stored under.
      results.forEach((r, i) => expect(events[r[0]! - 1]!.data).toEqual({ text: `n${i}` }));
      expect((await log.info(k))!.lastSeq).toBe(200);
    });

    it("keeps parallel batches contiguous and sessions independent", async () => {
      const log = await make();
      const keys = Array.from({ length: 10 }, (_, i) => key(`par${i}`));
      const jobs = keys.flatMap((k) =>
        Array.from({ length: 5 }, (_, j) => log.append(k, [text(`${j}a`), text(`${j}b`), text(`${j}c`)]).then((s) => ({ k, j, s }))),
      );
      const done = await Promise.all(jobs);
      for (const { k, j, s } of done) {
        expect(s).toHaveLength(3);
        expect(s[1]).toBe(s[0]! + 1);
        expect(s[2]).toBe(s[0]! + 2);
        const events = await log.read(k, { afterSeq: s[0]! - 1, limit: 3 });
        expect(events.map((e) => (e.data as { text: string }).text)).toEqual([`${j}a`, `${j}b`, `${j}c`]);
      }
      for (const k of keys) expect((await log.read(k)).map((e) => e.seq)).toEqual(Array.from({ length: 15 }, (_, i) => i + 1));
    });

    it("appends to many sessions at once; one failing append fails alone", async () => {
      const log = await make();
      await log.append(key("grp-taken"), [msg("first", { idempotencyKey: "grp-taken" })]);
      const results = await Promise.allSettled(
        Array.from({ length: 12 }, (_, i) => log.append(key(`grp${i}`), [msg(`m${i}`, i === 5 ? { idempotencyKey: "grp-taken" } : {}), text(`r${i}`)])),
      );
      expect(results.map((r) => r.status)).toEqual(results.map((_, i) => (i === 5 ? "rejected" : "fulfilled")));
      expect((results[5] as PromiseRejectedResult).reason).toBeInstanceOf(DuplicateEventError);
      for (const [i, r] of results.entries()) if (i !== 5) expect((r as PromiseFulfilledResult<number[]>).value).toEqual([1, 2]);
      expect(await log.read(key("grp5"))).toEqual([]);
      expect((await log.read(key("grp7"))).map((e) => e.kind)).toEqual(["message_received", "assistant_text"]);
    });

    it("writes all or nothing", async () => {
      const log = await make();
      const k = key("atomic");
      await log.append(k, [msg("first", { platformMessageId: "m1" })]);
      // An invalid event in the middle of a batch: nothing is written.
      await expect(log.append(k, [text("a"), { kind: "nope", data: {} } as unknown as NewSessionEvent, text("b")])).rejects.toMatchObject({
        code: "invalid_argument",
      });
      await expect(log.append(k, [text("a"), { kind: "usage", data: { inputTokens: -1, outputTokens: 0 } }])).rejects.toBeInstanceOf(StoreError);
      // A duplicate platform id after a fresh one: the fresh one is not taken either.
      const dup = log.append(k, [msg("x", { platformMessageId: "m2" }), text("between"), msg("y", { platformMessageId: "m1" })]);
      await expect(dup).rejects.toBeInstanceOf(DuplicateEventError);
      await expect(dup).rejects.toMatchObject({ code: "duplicate", key: "platformMessageId", value: "m1" });
      expect((await log.read(k)).map((e) => e.seq)).toEqual([1]);
      expect(await log.findByPlatformMessageId("telegram", "bot1", "m2")).toBeUndefined();
      expect(await log.append(k, [msg("x", { platformMessageId: "m2" })])).toEqual([2]);
      // Repeating a key inside one batch is a duplicate too.
      await expect(log.append(k, [msg("a", { idempotencyKey: "i1" }), msg("b", { idempotencyKey: "i1" })])).rejects.toBeInstanceOf(DuplicateEventError);
      expect((await log.info(k))!.lastSeq).toBe(2);
    });

    it("detects conflicts with expectedSeq", async () => {
      const log = await make();
      const k = key("occ");
      expect(await log.append(k, [text("a")], { expectedSeq: 0 })).toEqual([1]);
      expect(await log.append(k, [text("b"), text("c")], { expectedSeq: 1 })).toEqual([2, 3]);
      const err = await log.append(k, [text("d")], { expectedSeq: 1 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SeqConflictError);
      expect(err).toMatchObject({ code: "conflict", expectedSeq: 1, actualSeq: 3 });
      await expect(log.append(k, [], { expectedSeq: 2 })).rejects.toBeInstanceOf(SeqConflictError);
      expect((await log.info(k))!.lastSeq).toBe(3);
      // Two writers that both saw seq 3: exactly one wins.
      const outcomes = await Promise.allSettled([log.append(k, [text("x")], { expectedSeq: 3 }), log.append(k, [text("y")], { expectedSeq: 3 })]);
      expect(outcomes.filter((o) => o.status === "fulfilled")).toHaveLength(1);
      expect(outcomes.filter((o) => o.status === "rejected" && o.reason instanceof SeqConflictError)).toHaveLength(1);
      expect((await log.read(k)).map((e) => e.seq)).toEqual([1, 2, 3, 4]);
    });

    it("validates session keys and events", async () => {
      const log = await make();
      for (const bad of ["", "main", "agent:a:b:c", "agent:a:b:c:d:e", "agent::b:c:d", "agent:a:b:c:%zz", "agent:a:b:c:%3a"]) {
        await expect(log.append(bad, [text("x")])).rejects.toMatchObject({ code: "invalid_argument" });
        await expect(log.read(bad)).rejects.toMatchObject({ code: "invalid_argument" });
      }
      const tricky = formatSessionKey({ agent: "main", channel: "discord", account: "a:b", peer: "50%:x" });
      expect(tricky).toBe("agent:main:discord:a%3Ab:50%25%3Ax");
      await log.append(tricky, [text("ok")]);
      expect(await log.info(tricky)).toMatchObject({ account: "a:b", peer: "50%:x", lastSeq: 1 });
      await expect(log.append(key("v"), [{ kind: "tool_use", data: { id: "1", name: "n" } } as unknown as NewSessionEvent])).rejects.toMatchObject({
        code: "invalid_argument",
      });
      await expect(log.append(key("v"), [{ ...text("x"), at: -5 }])).rejects.toMatchObject({ code: "invalid_argument" });
      await expect(log.append(key("v"), [msg("x", { platformMessageId: "" })])).rejects.toMatchObject({ code: "invalid_argument" });
      await expect(log.append(key("v"), [{ kind: "compaction", data: { summary: "s", upToSeq: 1 } }])).rejects.toMatchObject({ code: "invalid_argument" });
      expect(await log.info(key("v"))).toBeUndefined();
    });

    it("lists sessions with filters and pagination", async () => {
      const log = await make();
      expect(await log.countSessions()).toBe(0);
      const specs = [
        ["alice", "main", "telegram"],
        ["bob", "main", "telegram"],
        ["carol", "main", "slack"],
        ["alice", "helper", "slack"],
        ["dave", "helper", "telegram"],
        ["x:y", "main", "web:chat"],
      ] as const;
      for (const [peer, agent, channel] of specs) await log.append(key(peer, agent, channel), [text(`hi ${peer}`)]);
      expect(await log.countSessions()).toBe(specs.length);
      const all = await log.listSessions();
      expect(all.nextCursor).toBeUndefined();
      expect(all.sessions.map((s) => s.sessionKey)).toEqual(specs.map(([p, a, c]) => key(p, a, c)).sort());
      const keysOf = async (o: Parameters<SessionLog["listSessions"]>[0]) =>
        (await log.listSessions(o)).sessions.map((s) => `${s.agent}/${s.channel}/${s.peer}`).sort();
      expect(await keysOf({ agent: "helper" })).toEqual(["helper/slack/alice", "helper/telegram/dave"]);
      expect(await keysOf({ channel: "slack" })).toEqual(["helper/slack/alice", "main/slack/carol"]);
      expect(await keysOf({ peer: "alice" })).toEqual(["helper/slack/alice", "main/telegram/alice"]);
      expect(await keysOf({ agent: "main", channel: "telegram" })).toEqual(["main/telegram/alice", "main/telegram/bob"]);
      expect(await keysOf({ channel: "web:chat", peer: "x:y" })).toEqual(["main/web:chat/x:y"]);
      expect(await keysOf({ agent: "nobody" })).toEqual([]);
      // Pages of two walk the whole list exactly once.
      const seen: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await log.listSessions({ limit: 2, ...(cursor ? { cursor } : {}) });
        seen.push(...page.sessions.map((s) => s.sessionKey));
        cursor = page.nextCursor;
        pages++;
      } while (cursor);
      expect(pages).toBe(3);
      expect(seen).toEqual(all.sessions.map((s) => s.sessionKey));
      // Filters and pages combine.
      const p1 = await log.listSessions({ agent: "main", limit: 2 });
      expect(p1.sessions).toHaveLength(2);
      const p2 = await log.listSessions({ agent: "main", limit: 2, cursor: p1.nextCursor! });
      expect([...p1.sessions, ...p2.sessions].map((s) => s.agent)).toEqual(["main", "main", "main", "main"]);
      expect(p2.nextCursor).toBeUndefined();
      await expect(log.listSessions({ cursor: "not a cursor!" })).rejects.toMatchObject({ code: "invalid_argument" });
    });

    it("reset appends a marker: history and projection restart, the log and dedupe keys stay", async () => {
      const log = await make();
      const k = key("resetme");
      await log.append(k, toolTurn("r1", "what is 6*7?"));
      await log.append(k, [msg("keep me out", { platformMessageId: "before-reset" }), started("r2"), text("ok", "r2"), ended("r2")]);
      expect(projectHistory(await log.readHistory(k))).toHaveLength(6);
      const seq = await log.reset(k, "user asked");
      expect(seq).toBe(13);
      expect((await log.info(k))!.resetSeq).toBe(13);
      expect(await log.readHistory(k)).toEqual([]);
      expect(projectHistory(await log.read(k))).toEqual([]);
      const all = await log.read(k);
      expect(all).toHaveLength(13);
      expect(all[12]).toMatchObject({ kind: "reset", data: { reason: "user asked" } });
      await expect(log.append(k, [msg("again", { platformMessageId: "before-reset" })])).rejects.toBeInstanceOf(DuplicateEventError);
      await log.append(k, [msg("after", {}, "r3"), started("r3"), text("fresh start", "r3"), ended("r3")]);
      expect(projectHistory(await log.readHistory(k))).toEqual([
        { role: "user", content: [{ type: "text", text: "after" }] },
        { role: "assistant", content: [{ type: "text", text: "fresh start" }] },
      ]);
      expect((await log.readHistory(k)).map((e) => e.seq)).toEqual([14, 15, 16, 17]);
      // Resetting an unknown session creates it with just the marker.
      expect(await log.reset(key("fresh"))).toBe(1);
    });

    it("deletes a session, its events and its dedupe keys", async () => {
      const log = await make();
      const k = key("gone");
      await log.append(k, [msg("secret plans", { platformMessageId: "pm-del", idempotencyKey: "idem-del" }), text("noted")]);
      await log.append(key("stays"), [text("secret plans too")]);
      expect(await log.countSessions()).toBe(2);
      expect(await log.delete(k)).toBe(true);
      expect(await log.delete(k)).toBe(false);
      expect(await log.countSessions()).toBe(1);
      expect(await log.read(k)).toEqual([]);
      expect(await log.info(k)).toBeUndefined();
      expect((await log.listSessions()).sessions.map((s) => s.sessionKey)).toEqual([key("stays")]);
      expect(await log.findByPlatformMessageId("telegram", "bot1", "pm-del")).toBeUndefined();
      expect(await log.findByIdempotencyKey("idem-del")).toBeUndefined();
      expect((await log.search("secret plans")).map((h) => h.event.sessionKey)).toEqual([key("stays")]);
      // The key is free again and seqs start over.
      expect(await log.append(k, [msg("again", { platformMessageId: "pm-del", idempotencyKey: "idem-del" })])).toEqual([1]);
    });

    it("searches text content across sessions", async () => {
      const log = await make();
      await log.append(key("s1"), [msg("Where is the lighthouse keeper?"), text("The lighthouse keeper is asleep.")]);
      await log.append(key("s2"), [
        msg("Tell me about submarines"),
        { kind: "tool_result", data: { toolUseId: "t", content: "submarine depth record: 10928 metres", isError: false } },
        { kind: "compaction", data: { summary: "We talked about the lighthouse.", upToSeq: 2 } },
        { kind: "error", data: { code: -32000, message: "quota exceeded for lighthouse" } },
      ]);
      await log.append(key("s3"), [{ kind: "tool_use", data: { id: "x", name: "lighthouse", input: { lighthouse: "lighthouse" } } }]);
      const hits = await log.search("lighthouse");
      expect(hits.map((h) => `${h.event.sessionKey}#${h.event.seq}`).sort()).toEqual(
        [`${key("s1")}#1`, `${key("s1")}#2`, `${key("s2")}#3`, `${key("s2")}#4`].sort(),
      );
      for (const h of hits) expect(typeof h.score).toBe("number");
      for (let i = 1; i < hits.length; i++) expect(hits[i - 1]!.score).toBeGreaterThanOrEqual(hits[i]!.score);
      expect((await log.search("LIGHTHOUSE keeper")).map((h) => h.event.seq).sort()).toEqual([1, 2]);
      expect(await log.search("lighthouse banana")).toEqual([]);
      expect((await log.search("depth", {})).map((h) => h.event.data)).toEqual([
        { toolUseId: "t", content: "submarine depth record: 10928 metres", isError: false },
      ]);
      expect((await log.search("10928")).map((h) => h.event.kind)).toEqual(["tool_result"]);
      expect((await log.search("lighthouse", { sessionKey: key("s2") })).map((h) => h.event.seq).sort()).toEqual([3, 4]);
      expect(await log.search("lighthouse", { limit: 2 })).toHaveLength(2);
      expect(await log.search("   ")).toEqual([]);
      expect(await log.search("")).toEqual([]);
      // A term of 3+ characters also finds words it starts; a whole word ranks above a prefix.
      expect((await log.search("submarine")).map((h) => `${h.event.sessionKey}#${h.event.seq}`)).toEqual([`${key("s2")}#2`, `${key("s2")}#1`]);
      expect(await log.search("su")).toEqual([]);
      // Only the session asked for is read; a session's range does not run into the next one.
      expect(await log.search("keeper", { sessionKey: key("s2") })).toEqual([]);
      expect((await log.search("keeper", { sessionKey: key("s1") })).map((h) => h.event.seq).sort()).toEqual([1, 2]);
    });

    it("finds messages by platform message id and idempotency key; both are unique", async () => {
      const log = await make();
      const k1 = key("d1");
      const k2 = key("d2");
      await log.append(k1, [msg("one", { platformMessageId: "100", idempotencyKey: "req-1" }), msg("two", { platformMessageId: "101" })]);
      await log.append(k2, [msg("other account", { platformMessageId: "100", account: "bot2" })]);
      expect(await log.findByPlatformMessageId("telegram", "bot1", "100")).toMatchObject({ sessionKey: k1, seq: 1, data: { content: "one" } });
      expect(await log.findByPlatformMessageId("telegram", "bot1", "101")).toMatchObject({ sessionKey: k1, seq: 2 });
      expect(await log.findByPlatformMessageId("telegram", "bot2", "100")).toMatchObject({ sessionKey: k2, seq: 1 });
      expect(await log.findByPlatformMessageId("slack", "bot1", "100")).toBeUndefined();
      expect(await log.findByIdempotencyKey("req-1")).toMatchObject({ sessionKey: k1, seq: 1, kind: "message_received" });
      expect(await log.findByIdempotencyKey("req-2")).toBeUndefined();
      // Unique across sessions.
      await expect(log.append(k2, [msg("dup", { platformMessageId: "101" })])).rejects.toMatchObject({ key: "platformMessageId", value: "101" });
      await expect(log.append(k2, [msg("dup", { idempotencyKey: "req-1" })])).rejects.toMatchObject({ key: "idempotencyKey", value: "req-1" });
      // Concurrent writers of one key: exactly one wins.
      const race = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => log.append(key(`race${i}`), [msg("race", { idempotencyKey: "req-race" })])));
      expect(race.filter((r) => r.status === "fulfilled")).toHaveLength(1);
      expect(race.filter((r) => r.status === "rejected" && r.reason instanceof DuplicateEventError)).toHaveLength(5);
    });

    it("reports messages whose turn never finished", async () => {
      const log = await make();
      await log.append(key("p-open"), [msg("unanswered")]);
      await log.append(key("p-done"), [msg("answered"), started("a"), text("yes"), ended("a")]);
      await log.append(key("p-failed"), [msg("failed"), started("b"), failed("b")]);
      await log.append(key("p-queue"), [msg("first"), msg("second"), started("c"), ended("c")]);
      await log.append(key("p-reset"), [msg("forgotten")]);
      await log.reset(key("p-reset"));
      await log.append(key("p-run"), [msg("m1", {}, "x1"), msg("m2", {}, "x2"), started("x2"), ended("x2")]);
      await log.append(key("p-crash"), [msg("mid-turn"), started("d"), text("partial")]);
      const pending = await log.pendingTurns();
      expect(pending.map((e) => `${e.sessionKey.split(":")[4]}:${e.data.content}`).sort()).toEqual([
        "p-crash:mid-turn",
        "p-open:unanswered",
        "p-queue:second",
        "p-run:m1",
      ]);
      expect(pending.every((e) => e.kind === "message_received")).toBe(true);
      // Finishing them clears the list.
      await log.append(key("p-open"), [started("e"), ended("e")]);
      await log.append(key("p-queue"), [started("f"), failed("f")]);
      await log.append(key("p-run"), [started("x1"), ended("x1")]);
      await log.append(key("p-crash"), [failed("d")]);
      expect(await log.pendingTurns()).toEqual([]);
    });

    it("keeps the reply outbox: owed replies stay through turn ends and resets until settled, go with a deleted session", async () => {
      const log = await make();
      const owe = (content: string, k: string, runId: string): NewSessionEvent => ({
        kind: "message_received",
        data: { content, channel: "telegram", account: "bot1", peer: "p", idempotencyKey: k, platformMessageId: k, awaitsReply: true },
        runId,
      });
      expect(await log.pendingReplies()).toEqual([]);
      await log.append(key("o-a"), [owe("a1", "ka1", "ra1"), started("ra1"), ended("ra1")]);
      await log.append(key("o-a"), [owe("a2", "ka2", "ra2")]);
      await log.append(key("o-b"), [owe("b1", "kb1", "rb1"), started("rb1"), failed("rb1"), msg("not owed", { idempotencyKey: "kn" }, "rn")]);
      await log.reset(key("o-b"));
      await log.append(key("o-c"), [owe("c1", "kc1", "rc1")]);
      const owed = await log.pendingReplies();
      expect(owed.map((e) => `${e.sessionKey.split(":")[4]}:${e.data.content}:${e.seq}`)).toEqual(["o-a:a1:1", "o-a:a2:4", "o-b:b1:1", "o-c:c1:1"]);
      expect(owed.every((e) => e.kind === "message_received" && e.data.awaitsReply === true)).toBe(true);
      await log.settleReplies(["ka1", "kb1", "unknown", "kn"]);
      expect((await log.pendingReplies()).map((e) => e.data.idempotencyKey)).toEqual(["ka2", "kc1"]);
      await log.settleReplies(["ka1"]); // again: harmless
      await log.delete(key("o-c"));
      expect((await log.pendingReplies()).map((e) => e.data.idempotencyKey)).toEqual(["ka2"]);
      await log.settleReplies(["ka2"]);
      expect(await log.pendingReplies()).toEqual([]);
      // awaitsReply needs the key the outbox settles by.
      await expect(
        log.append(key("o-d"), [{ kind: "message_received", data: { content: "x", channel: "telegram", account: "bot1", peer: "p", awaitsReply: true } }]),
      ).rejects.toThrow(/awaitsReply needs an idempotencyKey/);
    });

    it("prunes whole idle sessions, never one with an open turn or an owed reply, and frees their dedupe keys", async () => {
      const log = await make();
      const t0 = clock;
      const owe = (content: string, k: string, runId: string): NewSessionEvent => ({
        kind: "message_received",
        data: { content, channel: "telegram", account: "bot1", peer: "p", idempotencyKey: k, awaitsReply: true },
        runId,
      });
      await log.append(key("old-done"), [msg("zebra crossing", { idempotencyKey: "k-old", platformMessageId: "pm-old" }, "r1"), started("r1")]);
      await log.append(key("old-done"), [text("zebras are striped", "r1"), ended("r1")]);
      await log.append(key("old-open"), [msg("still running", {}, "r2"), started("r2")]);
      await log.append(key("old-owed"), [owe("answer me", "k-owed", "r3"), started("r3"), ended("r3")]);
      clock = t0 + 1000;
      await log.append(key("recent"), [msg("zebra again", {}, "r4"), started("r4"), ended("r4")]);
      const cutoff = t0 + 500;

      // A dry run counts and removes nothing.
      expect(await log.prune({ idleBeforeMs: cutoff, dryRun: true })).toEqual({ sessions: 1, events: 4, kept: 2 });
      expect(await log.countSessions()).toBe(4);
      expect(await log.prune({ idleBeforeMs: cutoff })).toEqual({ sessions: 1, events: 4, kept: 2 });
      expect(await log.info(key("old-done"))).toBeUndefined();
      expect(await log.read(key("old-done"))).toEqual([]);
      expect((await log.listSessions()).sessions.map((x) => x.peer)).toEqual(["old-open", "old-owed", "recent"]);
      expect((await log.search("zebra")).map((h) => h.event.sessionKey)).toEqual([key("recent")]);
      expect((await log.pendingTurns()).map((e) => e.data.content)).toEqual(["still running"]);
      expect((await log.pendingReplies()).map((e) => e.data.content)).toEqual(["answer me"]);
      // Its dedupe keys are free again.
      expect(await log.findByIdempotencyKey("k-old")).toBeUndefined();
      expect(await log.findByPlatformMessageId("telegram", "bot1", "pm-old")).toBeUndefined();
      expect(
        await log.append(key("old-done"), [
          msg("zebra, once more", { idempotencyKey: "k-old", platformMessageId: "pm-old" }, "r5"),
          started("r5"),
          ended("r5"),
        ]),
      ).toEqual([1, 2, 3]);

      // Once its reply is settled, an idle session goes; finishing a turn is activity (it stays).
      await log.settleReplies(["k-owed"]);
      clock = t0 + 2000;
      await log.append(key("old-open"), [ended("r2")]);
      expect(await log.prune({ idleBeforeMs: cutoff })).toEqual({ sessions: 1, events: 3, kept: 0 });
      expect(await log.info(key("old-owed"))).toBeUndefined();
      expect(await log.prune({ idleBeforeMs: cutoff })).toEqual({ sessions: 0, events: 0, kept: 0 });
      // Everything idle before a later cutoff.
      expect(await log.prune({ idleBeforeMs: clock + 1 })).toEqual({ sessions: 3, events: 9, kept: 0 });
      expect(await log.countSessions()).toBe(0);
      await expect(log.prune({ idleBeforeMs: Number.NaN })).rejects.toMatchObject({ code: "invalid_argument" });
      await expect(log.prune({} as never)).rejects.toThrow(/idleBeforeMs/);
    });

    it("redacts secrets before writing when asked", async () => {
      const log = await make({ redact: true });
      const k = key("redact");
      const secret = "sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789";
      await log.append(k, [
        msg(`my key is ${secret} and password=hunter22`),
        { kind: "tool_use", data: { id: "t", name: "http", input: { headers: { authorization: "Bearer abcdefghijklmnop123" }, n: 1 } } },
      ]);
      const [m, use] = await log.read(k);
      expect(m!.data).toMatchObject({ content: "my key is [redacted:anthropic_key] and password=[redacted:password]" });
      expect(use!.data).toEqual({ id: "t", name: "http", input: { headers: { authorization: "Bearer [redacted:bearer]" }, n: 1 } });
      expect(await log.search("abcdefghijklmnopqrstuvwxyz0123456789")).toEqual([]);
      expect(await log.search("hunter22")).toEqual([]);
      const plain = await make();
      await plain.append(k, [msg(`my key is ${secret}`)]);
      expect((await plain.read(k))[0]!.data).toMatchObject({ content: `my key is ${secret}` });
    });

    it("projects completed turns into valid chat messages, honouring compaction", async () => {
      const log = await make();
      const k = key("proj");
      await log.append(k, toolTurn("r1", "what is 6*7?"));
      await log.append(k, [
        msg("this one fails", {}, "r2"),
        started("r2"),
        text("half an ans", "r2"),
        { kind: "tool_use", data: { id: "tu-r2", name: "calc", input: {} }, runId: "r2" },
        failed("r2"),
      ]);
      await log.append(k, [msg("and now?", {}, "r3"), started("r3"), text("Now ", "r3"), text("fine.", "r3"), ended("r3")]);
      await log.append(k, [msg("still running", {}, "r4"), started("r4"), text("thinking", "r4")]);
      const expected: ChatMessage[] = [
        { role: "user", content: [{ type: "text", text: "what is 6*7?" }] },
        {
          role: "assistant",
          content: [
            { type: "text", text: "Let me compute." },
            { type: "tool_use", id: "tu-r1", name: "calc", input: { expr: "6*7" } },
          ],
        },
        { role: "user", content: [{ type: "tool_result", toolUseId: "tu-r1", content: "42", isError: false }] },
        { role: "assistant", content: [{ type: "text", text: "The answer is 42." }] },
        { role: "user", content: [{ type: "text", text: "and now?" }] },
        { role: "assistant", content: [{ type: "text", text: "Now fine." }] },
      ];
      expect(projectHistory(await log.readHistory(k))).toEqual(expected);
      // Compaction of the first turns (seqs 1..13): summary, then what followed.
      await log.append(k, [ended("r4"), { kind: "compaction", data: { summary: "User asked 6*7; it is 42.", upToSeq: 13 } }]);
      const history = await log.readHistory(k);
      expect(history[0]!.seq).toBe(14);
      expect(projectHistory(history)).toEqual([
        { role: "user", content: [{ type: "text", text: COMPACTION_SUMMARY_PREFIX + "User asked 6*7; it is 42." }] },
        { role: "assistant", content: [{ type: "text", text: COMPACTION_SUMMARY_ACK }] },
        { role: "user", content: [{ type: "text", text: "and now?" }] },
        { role: "assistant", content: [{ type: "text", text: "Now fine." }] },
        { role: "user", content: [{ type: "text", text: "still running" }] },
        { role: "assistant", content: [{ type: "text", text: "thinking" }] },
      ]);
      expect((await log.info(k))!.compaction).toEqual({ seq: 23, upToSeq: 13 });
      // The full log projects the same.
      expect(projectHistory(await log.read(k))).toEqual(projectHistory(history));
    });

    it("refuses calls after close", async () => {
      const log = await make();
      await log.append(key("c"), [text("x")]);
      await log.close();
      await log.close();
      await expect(log.append(key("c"), [text("y")])).rejects.toMatchObject({ code: "closed" });
      await expect(log.read(key("c"))).rejects.toMatchObject({ code: "closed" });
      await expect(log.listSessions()).rejects.toMatchObject({ code: "closed" });
    });

    it("forgetting a peer erases every session with it (any agent, any channel) and nothing else", async () => {
      const log = await make();
      const forgotten = [key("p1"), key("p1", "other"), key("p1", "main", "slack", "T1")];
      const kept = [key("p2"), key("p1x")];
      for (const k of [...forgotten, ...kept]) await log.append(k, [msg(`secret pelican of ${k}`, {}, "r"), started("r"), text("noted", "r"), ended("r")]);
      await log.reset(forgotten[0]!);
      const result = await forgetPeer({ log, deleteSession: (k) => log.delete(k) }, { peer: "p1" });
      expect(result.sessions.sort()).toEqual([...forgotten].sort());
      for (const k of forgotten) {
        expect(await log.info(k)).toBeUndefined();
        expect(await log.read(k)).toEqual([]);
      }
      const hits = await log.search("pelican");
      expect(hits.map((h) => h.event.sessionKey).sort()).toEqual([...kept].sort());
      // Narrowed to one channel: only that channel's session goes.
      await log.append(key("p2", "main", "slack", "T1"), [msg("hi")]);
      const narrow = await forgetPeer({ log, deleteSession: (k) => log.delete(k) }, { peer: "p2", channel: "slack" });
      expect(narrow.sessions).toEqual([key("p2", "main", "slack", "T1")]);
      expect(await log.info(key("p2"))).toBeDefined();
    });
  });
}
