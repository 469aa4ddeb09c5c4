import { describe, expect, it } from "vitest";
import { openTurnsEffect } from "../../host/src/store/events.js";
import { formatSessionKey, parseSessionKey, pendingMessages, type EventKind, type NewSessionEvent, type SessionEvent } from "../../host/src/store/index.js";
import { COMPACTION_SUMMARY_ACK, COMPACTION_SUMMARY_PREFIX, projectHistory } from "../../host/src/agent/index.js";

/** Numbers events as a log would. */
function log(...events: NewSessionEvent[]): SessionEvent[] {
  return events.map((e, i) => ({ sessionKey: "agent:a:c:x:p", seq: i + 1, at: 0, ...e }) as SessionEvent);
}
const m = (content: string, runId?: string): NewSessionEvent => ({
  kind: "message_received",
  data: { content, channel: "c", account: "x", peer: "p" },
  ...(runId ? { runId } : {}),
});
const s = (runId: string): NewSessionEvent => ({ kind: "turn_started", data: { runId }, runId });
const t = (text: string, runId?: string): NewSessionEvent => ({ kind: "assistant_text", data: { text }, ...(runId ? { runId } : {}) });
const use = (id: string, runId?: string): NewSessionEvent => ({ kind: "tool_use", data: { id, name: "tool", input: { id } }, ...(runId ? { runId } : {}) });
const res = (id: string, runId?: string): NewSessionEvent => ({
  kind: "tool_result",
  data: { toolUseId: id, content: `r${id}`, isError: false },
  ...(runId ? { runId } : {}),
});
const end = (runId: string): NewSessionEvent => ({ kind: "turn_ended", data: { runId, stopReason: "end_turn" }, runId });
const err = (runId?: string): NewSessionEvent => ({ kind: "error", data: { code: -32000, message: "x" }, ...(runId ? { runId } : {}) });
const user = (text: string) => ({ role: "user", content: [{ type: "text", text }] });
const assistant = (text: string) => ({ role: "assistant", content: [{ type: "text", text }] });

describe("projectHistory", () => {
  it("is empty for no events", () => {
    expect(projectHistory([])).toEqual([]);
  });

  it("groups parallel tool calls and their results", () => {
    const out = projectHistory(log(m("q"), s("r"), t("calling"), use("a"), use("b"), res("b"), res("a"), t("done"), end("r")));
    expect(out).toEqual([
      user("q"),
      {
        role: "assistant",
        content: [
          { type: "text", text: "calling" },
          { type: "tool_use", id: "a", name: "tool", input: { id: "a" } },
          { type: "tool_use", id: "b", name: "tool", input: { id: "b" } },
        ],
      },
      {
        role: "user",
        content: [
          { type: "tool_result", toolUseId: "b", content: "rb", isError: false },
          { type: "tool_result", toolUseId: "a", content: "ra", isError: false },
        ],
      },
      assistant("done"),
    ]);
  });

  it("shows a message steered into a running turn (queue mode steer) after the tool results it followed, not on its own", () => {
    const joined: NewSessionEvent = { kind: "turn_started", data: { runId: "A" }, runId: "B" };
    const closed: NewSessionEvent = { kind: "turn_ended", data: { runId: "A", stopReason: "end_turn" }, runId: "B" };
    const steered = [m("q", "A"), s("A"), m("also this", "B"), use("a", "A"), res("a", "A"), joined, t("done", "A"), end("A"), closed];
    expect(projectHistory(log(...steered, m("next", "C"), s("C"), t("ok", "C"), end("C")))).toEqual([
      user("q"),
      { role: "assistant", content: [{ type: "tool_use", id: "a", name: "tool", input: { id: "a" } }] },
      {
        role: "user",
        content: [
          { type: "tool_result", toolUseId: "a", content: "ra", isError: false },
          { type: "text", text: "also this" },
        ],
      },
      assistant("done"),
      user("next"),
      assistant("ok"),
    ]);
    // The run it joined failed: neither shows.
    const failed = [m("q", "A"), s("A"), m("also this", "B"), use("a", "A"), res("a", "A"), joined, err("A"), { ...err("B") }];
    expect(projectHistory(log(...failed))).toEqual([]);
  });

  it("drops failed, unfinished and malformed turns entirely", () => {
    const events = log(
      m("ok1"),
      s("1"),
      t("a1"),
      end("1"),
      m("fails"),
      s("2"),
      t("partial"),
      use("x"),
      err("2"),
      m("ok2"),
      s("3"),
      t("a3"),
      end("3"),
      m("unpaired"),
      s("4"),
      use("y"),
      t("no result"),
      end("4"),
      m("pending"),
      s("5"),
      t("..."),
    );
    expect(projectHistory(events)).toEqual([user("ok1"), assistant("a1"), user("ok2"), assistant("a3")]);
  });

  it("matches queued messages to turns in order, or by run id", () => {
    expect(projectHistory(log(m("first"), m("second"), s("1"), t("one"), end("1"), s("2"), t("two"), end("2")))).toEqual([
      user("first"),
      assistant("one"),
      user("second"),
      assistant("two"),
    ]);
    // With run ids, the second message's turn may run first.
    expect(projectHistory(log(m("first", "1"), m("second", "2"), s("2"), t("two", "2"), end("2"), s("1"), t("one", "1"), end("1")))).toEqual([
      user("first"),
      assistant("one"),
      user("second"),
      assistant("two"),
    ]);
  });

  it("keeps a turn that ends without final text (like the runtime does)", () => {
    expect(projectHistory(log(m("q"), s("1"), use("a"), res("a"), end("1")))).toEqual([
      user("q"),
      { role: "assistant", content: [{ type: "tool_use", id: "a", name: "tool", input: { id: "a" } }] },
      { role: "user", content: [{ type: "tool_result", toolUseId: "a", content: "ra", isError: false }] },
    ]);
    expect(projectHistory(log(m("q"), s("1"), t(""), end("1")))).toEqual([user("q")]);
  });

  it("starts after the latest reset and uses only the latest compaction", () => {
    const events = log(
      m("old"),
      s("1"),
      t("old answer"),
      end("1"),
      { kind: "compaction", data: { summary: "first summary", upToSeq: 4 } },
      { kind: "reset", data: {} },
      m("q2"),
      s("2"),
      t("a2"),
      end("2"),
      m("q3"),
      s("3"),
      t("a3"),
      end("3"),
      { kind: "compaction", data: { summary: "discarded", upToSeq: 8 } },
      { kind: "compaction", data: { summary: "q2 was asked", upToSeq: 10 } },
      m("q4"),
      s("4"),
      t("a4"),
      end("4"),
    );
    expect(projectHistory(events)).toEqual([
      user(COMPACTION_SUMMARY_PREFIX + "q2 was asked"),
      assistant(COMPACTION_SUMMARY_ACK),
      user("q3"),
      assistant("a3"),
      user("q4"),
      assistant("a4"),
    ]);
    expect(projectHistory(log(m("x"), s("1"), t("y"), end("1"), { kind: "reset", data: {} }))).toEqual([]);
  });

  it("drops a turn whose message the compaction covered even if it ended later", () => {
    const events = log(m("q1"), m("q2"), s("1"), t("a1"), end("1"), { kind: "compaction", data: { summary: "S", upToSeq: 5 } }, s("2"), t("a2"), end("2"));
    expect(projectHistory(events)).toEqual([user(COMPACTION_SUMMARY_PREFIX + "S"), assistant(COMPACTION_SUMMARY_ACK)]);
  });

  it("ignores events of other runs and events outside any turn", () => {
    const events = log(t("stray"), m("q", "1"), s("1"), t("mine", "1"), t("not mine", "zzz"), end("1"));
    expect(projectHistory(events)).toEqual([user("q"), assistant("mine")]);
  });
});

describe("pendingMessages", () => {
  it("closes by run id first, else oldest first; reset drops everything", () => {
    const events = log(m("a", "1"), m("b", "2"), m("c"), end("2"), err(), { kind: "turn_ended", data: { runId: "9", stopReason: "end_turn" } });
    expect(pendingMessages(events)).toEqual([]);
    const e2 = log(m("a", "1"), m("b", "2"), end("2"));
    expect(pendingMessages(e2).map((e) => e.data.content)).toEqual(["a"]);
    expect(pendingMessages(log(m("a"), { kind: "reset", data: {} }, m("b"))).map((e) => e.data.content)).toEqual(["b"]);
    expect(pendingMessages(log(end("1"), m("a")))).toHaveLength(1);
  });
});

describe("openTurnsEffect", () => {
  it("equals stepping the count event by event, for any start and batch", () => {
    const kinds: EventKind[] = ["message_received", "turn_ended", "error", "reset", "assistant_text"];
    let seed = 7;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    for (let trial = 0; trial < 500; trial++) {
      const batch = Array.from({ length: rnd(8) }, () => ({ kind: kinds[rnd(kinds.length)]! }));
      const { floor, delta } = openTurnsEffect(batch);
      for (const start of [0, 1, 2, 5]) {
        let o = start;
        for (const e of batch) {
          if (e.kind === "message_received") o += 1;
          else if (e.kind === "turn_ended" || e.kind === "error") o = Math.max(0, o - 1);
          else if (e.kind === "reset") o = 0;
        }
        expect(Math.max(floor, start + delta)).toBe(o);
      }
    }
  });
});

describe("session keys", () => {
  it("round-trips escaped parts", () => {
    const parts = { agent: "main", channel: "web:chat", account: "100%", peer: "a:%3A:b" };
    const k = formatSessionKey(parts);
    expect(k).toBe("agent:main:web%3Achat:100%25:a%3A%253A%3Ab");
    expect(parseSessionKey(k)).toEqual(parts);
  });
});
