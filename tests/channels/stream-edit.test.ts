// Progressive replies' throttle (host/src/channels/stream-edit.ts): pure planning, the streamed
// message's driver under fake timers, and the final edit. The platform is replaced by recorded
// calls here; tests/e2e/channel-stream.test.ts runs the real plugins against the fake platforms.
import { afterEach, describe, expect, it, vi } from "vitest";
import { nextStep, PreviewText, sendFinal, StreamingReply, type StreamState } from "../../host/src/channels/stream-edit.js";
import type { OutboundMessage } from "../../host/src/channels/types.js";

const text = (delta: string) => ({ type: "text", data: { delta } });
const usage = { type: "usage", data: { inputTokens: 1, outputTokens: 1 } };

describe("nextStep", () => {
  const fresh: StreamState = { messageId: undefined, shown: undefined, lastAt: 0, holdUntil: 0 };
  const limits = { intervalMs: 1000, firstChars: 10 };

  it("waits for enough text before the first message, then sends at once", () => {
    expect(nextStep(fresh, "Hi   ", 5000, limits)).toEqual({ kind: "idle" });
    expect(nextStep(fresh, "Hello there, world", 5000, limits)).toEqual({ kind: "send" });
  });

  it("edits only when the text changed and the interval passed; otherwise says how long to wait", () => {
    const s: StreamState = { messageId: "m1", shown: "Hello there", lastAt: 10_000, holdUntil: 0 };
    expect(nextStep(s, "Hello there", 20_000, limits)).toEqual({ kind: "idle" });
    expect(nextStep(s, "Hello there, more", 10_400, limits)).toEqual({ kind: "wait", ms: 600 });
    expect(nextStep(s, "Hello there, more", 11_000, limits)).toEqual({ kind: "edit" });
  });

  it("a pause the platform asked for holds the next edit past the interval", () => {
    const s: StreamState = { messageId: "m1", shown: "Hello there", lastAt: 10_000, holdUntil: 13_000 };
    expect(nextStep(s, "Hello there, more", 11_500, limits)).toEqual({ kind: "wait", ms: 1500 });
  });

  it("no edit while the first send has not returned an id", () => {
    const s: StreamState = { messageId: undefined, shown: "Hello there", lastAt: 0, holdUntil: 0 };
    expect(nextStep(s, "Hello there, more", 50_000, limits)).toEqual({ kind: "idle" });
  });
});

describe("PreviewText", () => {
  it("shows the last model call's text, as the turn's final text is", () => {
    const p = new PreviewText();
    p.push(text("Let me "));
    p.push(text("calculate."));
    expect(p.text).toBe("Let me calculate.");
    p.push({ type: "tool_use", data: { id: "t1", name: "calc", input: {} } });
    p.push(usage);
    expect(p.text).toBe("Let me calculate.");
    p.push({ type: "tool_result", data: { toolUseId: "t1", content: "4", isError: false } });
    p.push(text("The answer is 4."));
    expect(p.text).toBe("The answer is 4.");
  });

  it("a failover that discards the partial answer empties it", () => {
    const p = new PreviewText();
    p.push(text("Partial "));
    expect(p.push({ type: "failover", data: { from: "a/x", to: "b/y", reason: "server_error", discard: true } })).toBe(true);
    expect(p.text).toBe("");
    p.push(text("Whole answer"));
    expect(p.text).toBe("Whole answer");
  });
});

describe("StreamingReply", () => {
  afterEach(() => vi.useRealTimers());

  it("sends once, then edits at most once per interval while text streams every 100 ms", async () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const calls: { kind: "send" | "edit" | "remember"; at: number; content?: string }[] = [];
    const reply = new StreamingReply(
      {
        send: async (content) => (calls.push({ kind: "send", at: Date.now(), content }), "m1"),
        remember: async () => void calls.push({ kind: "remember", at: Date.now() }),
        edit: async (_id, content) => (calls.push({ kind: "edit", at: Date.now(), content }), {}),
        failed: (what, err) => {
          throw new Error(`${what}: ${String(err)}`);
        },
      },
      { intervalMs: 1000 },
    );
    let all = "";
    for (let i = 0; i < 60; i++) {
      const d = `word${i} `;
      all += d;
      reply.push(text(d));
      await vi.advanceTimersByTimeAsync(100);
    }
    await vi.advanceTimersByTimeAsync(2000);
    expect(await reply.finish()).toBe("m1");
    const sends = calls.filter((c) => c.kind === "send");
    const edits = calls.filter((c) => c.kind === "edit");
    expect(sends).toHaveLength(1);
    // The id is on disk before the first edit.
    expect(calls.findIndex((c) => c.kind === "remember")).toBeLessThan(calls.findIndex((c) => c.kind === "edit"));
    // 6 s of streaming at one edit a second: about 6 edits, never two within the interval.
    expect(edits.length).toBeGreaterThanOrEqual(4);
    expect(edits.length).toBeLessThanOrEqual(8);
    const times = [sends[0]!.at, ...edits.map((e) => e.at)];
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(1000);
    // The last edit caught up with everything streamed (the final edit is the outbox's).
    expect(edits.at(-1)!.content).toBe(all);
  });

  it("honours retryAfterMs from the plugin and stops after three failed edits in a row", async () => {
    vi.useFakeTimers({ now: 2_000_000 });
    const editsAt: number[] = [];
    let n = 0;
    const failures: string[] = [];
    const reply = new StreamingReply(
      {
        send: async () => "m2",
        remember: async () => {},
        edit: async () => {
          editsAt.push(Date.now());
          n++;
          if (n === 1) return { retryAfterMs: 5000 };
          throw new Error("HTTP 500");
        },
        failed: (what) => void failures.push(what),
      },
      { intervalMs: 500 },
    );
    for (let i = 0; i < 200; i++) {
      reply.push(text(`w${i} and more `));
      await vi.advanceTimersByTimeAsync(100);
    }
    await reply.finish();
    expect(editsAt[1]! - editsAt[0]!).toBeGreaterThanOrEqual(5000);
    expect(failures).toEqual(["edit", "edit", "edit"]);
    expect(editsAt).toHaveLength(4);
  });

  it("the final edit waits for the interval since the last call (finish resolves when it is due)", async () => {
    vi.useFakeTimers({ now: 3_000_000 });
    const reply = new StreamingReply({ send: async () => "m3", remember: async () => {}, edit: async () => ({}), failed: () => {} }, { intervalMs: 1000 });
    reply.push(text("enough text for the first message"));
    await vi.advanceTimersByTimeAsync(10);
    const sentAt = 3_000_000;
    let doneAt = 0;
    const done = reply.finish().then((id) => ((doneAt = Date.now()), id));
    await vi.advanceTimersByTimeAsync(2000);
    expect(await done).toBe("m3");
    expect(doneAt - sentAt).toBeGreaterThanOrEqual(1000);
  });

  it("a failed first send ends the streaming: no message id, the reply goes out as usual", async () => {
    const reply = new StreamingReply(
      {
        send: async () => {
          throw new Error("down");
        },
        remember: async () => {},
        edit: async () => ({}),
        failed: () => {},
      },
      { intervalMs: 100 },
    );
    reply.push(text("enough text to send at once"));
    expect(await reply.finish()).toBeUndefined();
  });
});

describe("sendFinal", () => {
  const message: OutboundMessage = { account: "default", peer: "p1", content: "FULL TEXT", replyTo: "in-1", replyId: "r-1" };
  const permanent = (err: unknown) => String(err).includes("permanent:");

  it("edits the streamed message to the whole text and sends the overflow as one more message (no reply-to)", async () => {
    const sent: OutboundMessage[] = [];
    const edited: string[] = [];
    const how = await sendFinal(
      {
        edit: async (id, content) => (edited.push(`${id}=${content}`), { overflow: "REST" }),
        send: async (m) => void sent.push(m),
        permanent,
      },
      message,
      "m9",
      new AbortController().signal,
    );
    expect(how).toBe("edited");
    expect(edited).toEqual(["m9=FULL TEXT"]);
    expect(sent).toEqual([{ account: "default", peer: "p1", content: "REST", replyId: "r-1:more" }]);
  });

  it("a message that is gone gets the text sent once as a new message", async () => {
    const sent: OutboundMessage[] = [];
    const how = await sendFinal(
      {
        edit: async () => {
          throw new Error("permanent: message to edit not found");
        },
        send: async (m) => void sent.push(m),
        permanent,
      },
      message,
      "m9",
      new AbortController().signal,
    );
    expect(how).toBe("sent");
    expect(sent).toEqual([message]);
  });

  it("a transient edit failure is thrown for the outbox to retry, nothing sent", async () => {
    const sent: OutboundMessage[] = [];
    await expect(
      sendFinal(
        {
          edit: async () => {
            throw new Error("HTTP 502");
          },
          send: async (m) => void sent.push(m),
          permanent,
        },
        message,
        "m9",
        new AbortController().signal,
      ),
    ).rejects.toThrow("HTTP 502");
    expect(sent).toEqual([]);
  });
});
