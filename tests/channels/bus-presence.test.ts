// The per-turn presence of a bus turn (bus-presence.ts): typing started and stopped, the streamed
// message's id recorded in the shared store before any edit, a re-run after a crash editing the
// recorded message instead of sending one, and the first message's own reply id (`<reply
// id>:preview`), the same in every run, so a platform deduping on it (Discord's enforce_nonce)
// returns the message a dead gateway sent before it could record it. The plugin calls are
// in-memory here; tests/bus/cluster-stream.test.ts runs the real path.
import { describe, expect, it } from "vitest";
import { createBusPresence, type BusPresenceDeps } from "../../host/src/channels/bus-presence.js";
import type { SharedStreamedReplies } from "../../host/src/channels/stream-kv.js";
import type { StreamedReply } from "../../host/src/channels/stream-state.js";

const silent = { debug() {}, info() {}, warn() {}, error() {} };
const text = (delta: string) => ({ type: "text", data: { delta } });

/** A platform that dedupes sends on their reply id (as Discord's nonce does). */
function world() {
  const store = new Map<string, StreamedReply>();
  const shared: SharedStreamedReplies = {
    get: async (k) => store.get(k),
    remember: async (k, e) => void store.set(k, e),
    forget: async (k) => void store.delete(k),
  };
  const sends: { content: string; replyId?: string }[] = [];
  const edits: { id: string; content: string }[] = [];
  const byReplyId = new Map<string, string>();
  let typingOn = 0;
  let typingStarts = 0;
  const deps = (o: { store?: SharedStreamedReplies } = {}): BusPresenceDeps => ({
    streamLimits: () => ({ intervalMs: 1, firstChars: 4 }),
    startTyping: () => (typingStarts++, typingOn++, () => void typingOn--),
    async send(_c, m) {
      const known = m.replyId !== undefined ? byReplyId.get(m.replyId) : undefined;
      if (known !== undefined) return known;
      sends.push({ content: m.content, ...(m.replyId !== undefined ? { replyId: m.replyId } : {}) });
      const id = `m${sends.length}`;
      if (m.replyId !== undefined) byReplyId.set(m.replyId, id);
      return id;
    },
    async edit(_c, r) {
      edits.push({ id: r.platformMessageId, content: r.content });
      return {};
    },
    store: async () => ("store" in o ? o.store : shared),
    logger: silent,
  });
  return { store, sends, edits, deps, typing: () => ({ on: typingOn, starts: typingStarts }) };
}

const to = { channel: "discord", account: "default", peer: "123", replyTo: "999" };
const settle = () => new Promise((r) => setTimeout(r, 30));

describe("bus turn presence", () => {
  it("shows typing until finish, sends the first message with `<reply id>:preview`, records its id before editing", async () => {
    const w = world();
    const p = await createBusPresence(w.deps())(to, "channel:discord:default:999", "channel:discord:default:999:reply");
    expect(w.typing()).toEqual({ on: 1, starts: 1 });
    p.emit(text("Hello there"));
    await settle();
    p.emit(text(", world"));
    await settle();
    expect(w.sends).toEqual([{ content: "Hello there", replyId: "channel:discord:default:999:reply:preview" }]);
    expect(w.store.get("channel:discord:default:999")?.platformMessageId).toBe("m1");
    expect(await p.finish()).toBe("m1");
    expect(await p.finish()).toBe("m1"); // idempotent
    expect(w.typing().on).toBe(0);
    expect(w.edits.at(-1)).toEqual({ id: "m1", content: "Hello there, world" });
  });

  it("a re-run after a crash edits the recorded message; one that crashed before recording gets the same message back by its reply id", async () => {
    const w = world();
    // Run 1 sends and records; the gateway dies (never finishes).
    const p1 = await createBusPresence(w.deps())(to, "k1", "k1:reply");
    p1.emit(text("partial answer"));
    await settle();
    // Run 2 (another gateway) finds it: no new send, edits m1.
    const p2 = await createBusPresence(w.deps())(to, "k1", "k1:reply");
    p2.emit(text("the whole answer"));
    await settle();
    expect(await p2.finish()).toBe("m1");
    expect(w.sends).toHaveLength(1);
    expect(w.edits.some((e) => e.id === "m1" && e.content === "the whole answer")).toBe(true);

    // Run 1 of k2 dies between the platform's answer and the store's write (no store at all here).
    const p3 = await createBusPresence(w.deps({ store: undefined }))(to, "k2", "k2:reply");
    p3.emit(text("first words"));
    await settle();
    const p4 = await createBusPresence(w.deps())(to, "k2", "k2:reply");
    p4.emit(text("first words and more"));
    await settle();
    // The platform returned the same message for the same preview id: still 2 messages in all.
    expect(await p4.finish()).toBe("m2");
    expect(w.sends).toHaveLength(2);
  });

  it("a replayed turn (nothing streamed by this run) still finds the recorded message for the final edit", async () => {
    const w = world();
    w.store.set("k3", { channel: "discord", account: "default", peer: "123", platformMessageId: "m9", at: 1 });
    const p = await createBusPresence(w.deps())(to, "k3", "k3:reply");
    expect(await p.finish()).toBe("m9");
    expect(w.sends).toHaveLength(0);
  });
});
