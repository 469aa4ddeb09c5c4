// The per-session projection checkpoint (projection.ts `projectIncremental`, kept by
// cached-log.ts with the session's cached history): a turn projects the events since the previous
// turn instead of the whole history. What it returns must be exactly what a fresh
// `projectHistory` of the same events returns, across every shape of turn, compaction, reset,
// session deletion and recreation, and the shared messages must never be changed by a later merge.
import { describe, expect, it } from "vitest";
import { CachedSessionLog } from "../../host/src/agent/cached-log.js";
import { projectHistory, projectIncremental, type ProjectionCheckpoint } from "../../host/src/agent/projection.js";
import type { ImageInput } from "../../host/src/agent/types.js";
import { createMemorySessionLog, type NewSessionEvent, type SessionEvent } from "../../host/src/store/index.js";

/** Builds a session's events in an append-only array, as the history cache holds them. */
class Session {
  readonly events: SessionEvent[] = [];
  private seq = 0;
  private runs = 0;

  add(kind: string, data: object, runId?: string): SessionEvent {
    const e = { seq: ++this.seq, ts: this.seq, kind, data, ...(runId !== undefined ? { runId } : {}) } as unknown as SessionEvent;
    this.events.push(e);
    return e;
  }
  run(): string {
    return `run-${++this.runs}`;
  }
  message(runId: string, content: string, extra: object = {}): SessionEvent {
    return this.add("message_received", { content, channel: "test", account: "a", peer: "p", ...extra }, runId);
  }
  /** One whole turn: message, start, the given parts, end. */
  turn(content: string, parts: [string, object][] = [["assistant_text", { text: `answer to ${content}` }]]): string {
    const runId = this.run();
    this.message(runId, content);
    this.add("turn_started", { runId }, runId);
    for (const [kind, data] of parts) this.add(kind, data, runId);
    this.add("usage", { inputTokens: 1, outputTokens: 1 }, runId);
    this.add("turn_ended", { runId, stopReason: "end_turn" }, runId);
    return runId;
  }
  get lastSeq(): number {
    return this.seq;
  }
}

const IMAGES: ReadonlyMap<string, ImageInput> = new Map([["abc", { mime: "image/png", data: "iVBORw0KGgo=", bytes: 8 }]]);

/**
 * Feeds `steps` to a session one at a time; after each, the incremental projection (resumed
 * from the previous checkpoint) must equal a fresh one, and every checkpoint taken so far must
 * still hold the messages it was taken with. Returns how many steps resumed from a checkpoint.
 */
function check(s: Session, steps: ((s: Session) => void)[], images?: ReadonlyMap<string, ImageInput>): number {
  let cp: ProjectionCheckpoint | undefined;
  let resumed = 0;
  const taken: { cp: ProjectionCheckpoint; json: string }[] = [];
  for (const step of steps) {
    step(s);
    const fresh = projectHistory(s.events, images);
    const inc = projectIncremental(s.events, images, cp);
    expect(inc.messages).toEqual(fresh);
    if (cp !== undefined && inc.checkpoint !== undefined && inc.checkpoint.first === cp.first && inc.checkpoint.index >= cp.index) resumed++;
    cp = inc.checkpoint;
    if (cp !== undefined) taken.push({ cp, json: JSON.stringify(cp.messages) });
    for (const t of taken) expect(JSON.stringify(t.cp.messages)).toBe(t.json);
  }
  return resumed;
}

describe("projectIncremental", () => {
  it("equals a fresh projection after every append: plain, tool, failed, pending, collected, steered and reply-less turns", () => {
    const s = new Session();
    const resumed = check(s, [
      (s) => s.turn("hello"),
      (s) =>
        s.turn("add", [
          ["tool_use", { id: "t1", name: "calculator", input: { expression: "1+1" } }],
          ["tool_result", { toolUseId: "t1", content: "2", isError: false }],
          ["assistant_text", { text: "2" }],
        ]),
      // A message whose turn has not started yet: nothing of it shows, and no checkpoint passes it.
      (s) => void s.message("run-pending", "waiting"),
      (s) => {
        s.add("turn_started", { runId: "run-pending" }, "run-pending");
        s.add("assistant_text", { text: "done waiting" }, "run-pending");
        s.add("turn_ended", { runId: "run-pending", stopReason: "end_turn" }, "run-pending");
      },
      // A failed turn.
      (s) => {
        const r = s.run();
        s.message(r, "fails");
        s.add("turn_started", { runId: r }, r);
        s.add("assistant_text", { text: "half" }, r);
        s.add("error", { code: -32000, message: "provider down" }, r);
      },
      // A turn that ended without a reply: its user message is merged with the next turn's (copied, not changed in the checkpoint).
      (s) => s.turn("no reply", []),
      (s) => s.turn("after the silent one"),
      (s) => s.turn("silent again", []),
      (s) =>
        s.turn("second after silence", [
          ["tool_use", { id: "t2", name: "send_file", input: { text: "x".repeat(2000) } }],
          ["tool_result", { toolUseId: "t2", content: "sent", isError: false }],
        ]),
      // Queue mode collect: A folded into B's turn.
      (s) => {
        const a = s.run();
        const b = s.run();
        s.message(a, "collect A");
        s.message(b, "collect B");
        s.add("turn_started", { runId: b }, a);
        s.add("turn_started", { runId: b }, b);
        s.add("assistant_text", { text: "both" }, b);
        s.add("turn_ended", { runId: b, stopReason: "end_turn" }, b);
        s.add("turn_ended", { runId: b, stopReason: "end_turn" }, a);
      },
      // Queue mode steer: C joins the running turn of D (open across two appends).
      (s) => {
        const d = s.run();
        s.message(d, "steer D");
        s.add("turn_started", { runId: d }, d);
        s.add("tool_use", { id: "t3", name: "calculator", input: {} }, d);
        s.add("tool_result", { toolUseId: "t3", content: "0", isError: false }, d);
      },
      (s) => {
        const d = "run-" + String(Number(s.events.at(-1)!.runId!.slice(4)));
        const c = s.run();
        s.message(c, "steered C");
        s.add("turn_started", { runId: d }, c);
        s.add("assistant_text", { text: "with C" }, d);
        s.add("turn_ended", { runId: d, stopReason: "end_turn" }, d);
        s.add("turn_ended", { runId: d, stopReason: "end_turn" }, c);
      },
      (s) => s.turn("after steer"),
      // A message dropped from a full queue: never started, its error names its run. No checkpoint passes it.
      (s) => {
        const r = s.run();
        s.message(r, "dropped");
        s.add("error", { code: -32004, message: "queue full" }, r);
      },
      (s) => s.turn("after the dropped one"),
      // A tool turn whose calls do not pair up (dropped).
      (s) => s.turn("unpaired", [["tool_use", { id: "t4", name: "calculator", input: {} }]]),
      (s) => s.turn("last"),
    ]);
    expect(resumed).toBeGreaterThanOrEqual(10);
  });

  it("starts over after a compaction or a reset, and resumes after them", () => {
    const s = new Session();
    const resumed = check(s, [
      (s) => s.turn("one"),
      (s) => s.turn("two"),
      (s) => s.turn("three"),
      (s) => void s.add("compaction", { summary: "one and two", upToSeq: 10 }, "run-compaction"),
      (s) => s.turn("four"),
      (s) => s.turn("five", []),
      (s) => s.turn("six"),
      (s) => void s.add("reset", {}),
      (s) => s.turn("seven"),
      (s) => s.turn("eight"),
    ]);
    expect(resumed).toBeGreaterThanOrEqual(6);
  });

  it("projects a session with stored images in full from its first image on, and still equals a fresh projection", () => {
    const s = new Session();
    check(
      s,
      [
        (s) => s.turn("before"),
        (s) => {
          const r = s.run();
          s.message(r, "look", { media: [{ sha256: "abc", mime: "image/png", bytes: 8 }] });
          s.add("turn_started", { runId: r }, r);
          s.add("assistant_text", { text: "a picture" }, r);
          s.add("turn_ended", { runId: r, stopReason: "end_turn" }, r);
        },
        (s) => s.turn("after"),
        (s) => s.turn("later"),
      ],
      IMAGES,
    );
    const first = projectIncremental(s.events, IMAGES, undefined).checkpoint!;
    expect(first.last.seq).toBeLessThan(s.events.find((e) => e.kind === "message_received" && e.data.media !== undefined)!.seq);
  });

  it("never resumes from a checkpoint of another array (a deleted and recreated session, a history read again from the store)", () => {
    const old = new Session();
    old.turn("old one");
    old.turn("old two", []);
    const cp = projectIncremental(old.events, undefined, undefined).checkpoint;
    expect(cp).toBeDefined();
    const recreated = new Session();
    recreated.turn("new one");
    recreated.turn("new two");
    recreated.turn("new three");
    expect(projectIncremental(recreated.events, undefined, cp).messages).toEqual(projectHistory(recreated.events));
    // The same events as new objects (a store read): a full projection, the same messages.
    const copy = old.events.map((e) => ({ ...e }));
    const inc = projectIncremental(copy, undefined, cp);
    expect(inc.messages).toEqual(projectHistory(copy));
    expect(inc.checkpoint!.first).toBe(copy[0]);
  });
});

describe("CachedSessionLog.projectHistory", () => {
  /** Appends `events` through the cache as the runtime does. */
  const append = (log: CachedSessionLog, key: string, events: NewSessionEvent[]) => log.append(key, events);
  const turn = (runId: string, text: string, reply: boolean): NewSessionEvent[] => [
    { kind: "message_received", runId, data: { content: text, channel: "test", account: "a", peer: "p" } },
    { kind: "turn_started", runId, data: { runId } },
    ...(reply ? [{ kind: "assistant_text", runId, data: { text: `re: ${text}` } } as NewSessionEvent] : []),
    { kind: "turn_ended", runId, data: { runId, stopReason: "end_turn" } },
  ];
  /** The cached projection and a fresh one of a fresh store read: equal. */
  const same = async (log: CachedSessionLog, key: string) => {
    const cached = log.projectHistory(key, await log.readHistory(key));
    expect(cached).toEqual(projectHistory(await log.log.readHistory(key)));
    return cached;
  };

  it("equals a fresh projection across appends, compaction, reset and deletion of the session", async () => {
    const store = createMemorySessionLog();
    const log = new CachedSessionLog(store, { sessions: 256, bytes: 16 * 1024 * 1024 });
    const key = "agent:main:test:a:p";
    for (let i = 1; i <= 6; i++) {
      await append(log, key, turn(`r${i}`, `message ${i}`, i % 3 !== 0));
      await same(log, key);
    }
    // Compaction as turn-history.ts writes it: the cached history is dropped first.
    log.drop(key);
    await append(log, key, [{ kind: "compaction", runId: "r7", data: { summary: "the first four", upToSeq: 14 } }]);
    expect((await same(log, key))[0]!.content[0]).toMatchObject({ text: expect.stringContaining("the first four") });
    for (let i = 7; i <= 9; i++) {
      await append(log, key, turn(`r${i}`, `message ${i}`, i !== 8));
      await same(log, key);
    }
    // Reset as the runtime does it.
    log.drop(key);
    await store.reset(key);
    expect(await same(log, key)).toEqual([]);
    await append(log, key, turn("r10", "after the reset", true));
    await same(log, key);
    // Deleted and written again under the same key.
    log.drop(key);
    expect(await store.delete(key)).toBe(true);
    await append(log, key, turn("r11", "a new session", true));
    expect(await same(log, key)).toEqual([
      { role: "user", content: [{ type: "text", text: "a new session" }] },
      { role: "assistant", content: [{ type: "text", text: "re: a new session" }] },
    ]);
    await append(log, key, turn("r12", "and again", true));
    expect(await same(log, key)).toHaveLength(4);
  });

  it("keeps the checkpoint with the cached history, within the cache's byte limit", async () => {
    const key = "agent:main:test:a:q";
    const fill = async (log: CachedSessionLog) => {
      for (let i = 1; i <= 4; i++) {
        await log.append(key, turn(`r${i}`, `message ${i} ${"y".repeat(200)}`, true));
        await same(log, key);
      }
    };
    const roomy = new CachedSessionLog(createMemorySessionLog(), { sessions: 10, bytes: 1024 * 1024 });
    await roomy.readHistory(key); // fills the (empty) entry, as a session's first turn does
    await fill(roomy);
    const withCheckpoint = (roomy as unknown as { cache: { bytes: number } }).cache.bytes;
    // A limit that holds the events but not the checkpoint too: the events stay cached without it.
    const events = (await roomy.readHistory(key)).length;
    expect(events).toBeGreaterThan(0);
    const tight = new CachedSessionLog(createMemorySessionLog(), { sessions: 10, bytes: Math.floor(withCheckpoint * 0.7) });
    await tight.readHistory(key);
    await fill(tight);
    const cache = (tight as unknown as { cache: { bytes: number; size: number } }).cache;
    expect(cache.size).toBe(1);
    expect(cache.bytes).toBeLessThan(withCheckpoint * 0.7);
  });
});
