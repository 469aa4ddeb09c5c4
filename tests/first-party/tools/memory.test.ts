// memory through the real sandbox, on the kv host functions: remember / recall / forget,
// notebooks kept apart by the host-filled call context (agent, channel, account, peer, sender), persistence across instances,
// the quota, and a clear answer without the kv grant.
import { rm } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ok, tempDir, toolClient, type ToolClient } from "./support.js";

let state = "";
const clients: ToolClient[] = [];
async function client(grant = { kv: { quotaBytes: 1024 * 1024 } }, dir = state): Promise<ToolClient> {
  const c = await toolClient("memory", { grant, stateDir: dir });
  clients.push(c);
  return c;
}

beforeAll(async () => {
  state = await tempDir();
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  if (state) await rm(state, { recursive: true, force: true });
});

describe("memory", () => {
  it("remembers, recalls newest first, filters by words, and forgets", async () => {
    const c = await client();
    const alice = { peer: "alice" };
    expect(await c.call("memory", { action: "recall" }, alice)).toEqual(ok("No notes yet."));
    expect(await c.call("memory", { action: "remember", note: "Prefers tea over coffee" }, alice)).toEqual(ok("Remembered note #1."));
    expect(await c.call("memory", { action: "remember", note: "Birthday: 12 March" }, alice)).toEqual(ok("Remembered note #2."));
    expect(await c.call("memory", { action: "remember", note: "  Allergic to peanuts, not to TEA  " }, alice)).toEqual(ok("Remembered note #3."));
    expect(await c.call("memory", { action: "recall" }, alice)).toEqual(
      ok("3 notes, newest first:\n#3: Allergic to peanuts, not to TEA\n#2: Birthday: 12 March\n#1: Prefers tea over coffee"),
    );
    expect(await c.call("memory", { action: "recall", query: "tea" }, alice)).toEqual(
      ok("2 notes matching 'tea', newest first:\n#3: Allergic to peanuts, not to TEA\n#1: Prefers tea over coffee"),
    );
    expect(await c.call("memory", { action: "recall", query: "tea coffee" }, alice)).toEqual(
      ok("1 note matching 'tea coffee', newest first:\n#1: Prefers tea over coffee"),
    );
    expect(await c.call("memory", { action: "recall", query: "golf" }, alice)).toEqual(ok("No note matches 'golf' (3 notes in total)."));
    expect(await c.call("memory", { action: "forget", id: 2 }, alice)).toEqual(ok("Forgot note #2."));
    expect(await c.call("memory", { action: "forget", id: 2 }, alice)).toEqual({ content: "there is no note #2", isError: true });
    // Ids are never reused.
    expect(await c.call("memory", { action: "remember", note: "Lives in Lisbon" }, alice)).toEqual(ok("Remembered note #4."));
  });

  it("keeps each peer's notes apart, and uses a shared notebook when the host sends no peer", async () => {
    const c = await client();
    await c.call("memory", { action: "remember", note: "bob's secret" }, { peer: "bob" });
    await c.call("memory", { action: "remember", note: "a/b%c peer" }, { peer: "a/b%c" });
    expect((await c.call("memory", { action: "recall" }, { peer: "bob" })).content).toBe("1 note, newest first:\n#1: bob's secret");
    expect((await c.call("memory", { action: "recall", query: "secret" }, { peer: "carol" })).content).toBe("No notes yet.");
    expect((await c.call("memory", { action: "recall" }, { peer: "a/b%c" })).content).toBe("1 note, newest first:\n#1: a/b%c peer");
    expect((await c.call("memory", { action: "recall" }, { peer: "a" })).content).toBe("No notes yet.");
    // No context (`exoclaw plugin test`): a notebook of its own; an input field cannot pick a peer.
    await c.call("memory", { action: "remember", note: "shared note" });
    expect((await c.call("memory", { action: "recall", peer: "bob" } as Record<string, unknown>)).content).toBe("1 note, newest first:\n#1: shared note");
    expect((await c.call("memory", { action: "recall" }, { peer: "shared" })).content).toBe("No notes yet.");
  });

  it("keys a notebook on agent, channel, account, peer and sender, unambiguously", async () => {
    const c = await client(undefined, await tempDir());
    const base = { agentId: "main", channel: "telegram", account: "default", peer: "111", sender: "111" };
    await c.call("memory", { action: "remember", note: "telegram 111's secret" }, base);
    expect((await c.call("memory", { action: "recall" }, base)).content).toBe("1 note, newest first:\n#1: telegram 111's secret");
    // The same peer id anywhere else is somebody else.
    for (const other of [
      { ...base, channel: "ws" },
      { ...base, channel: "webhook" },
      { ...base, account: "other-bot" },
      { ...base, agentId: "helper" },
      { ...base, sender: "222" },
      { peer: "111" },
    ]) {
      expect((await c.call("memory", { action: "recall" }, other)).content, JSON.stringify(other)).toBe("No notes yet.");
    }
    // A missing sender is the peer (direct chats), so older hosts land in the same notebook.
    const { sender: _, ...noSender } = base;
    expect((await c.call("memory", { action: "recall" }, noSender)).content).toBe("1 note, newest first:\n#1: telegram 111's secret");
    // Separators inside ids cannot shift one field into the next: "a/b" + "c" is not "a" + "b/c".
    await c.call("memory", { action: "remember", note: "split one way" }, { ...base, channel: "a/b", account: "c" });
    expect((await c.call("memory", { action: "recall" }, { ...base, channel: "a", account: "b/c" })).content).toBe("No notes yet.");
    expect((await c.call("memory", { action: "recall" }, { ...base, channel: "a%2Fb", account: "c" })).content).toBe("No notes yet.");
  });

  it("persists across instances (the kv store is on disk)", async () => {
    const dir = await tempDir();
    const first = await client(undefined, dir);
    await first.call("memory", { action: "remember", note: "survives restarts" }, { peer: "dora" });
    await first.close();
    const second = await client(undefined, dir);
    expect((await second.call("memory", { action: "recall" }, { peer: "dora" })).content).toBe("1 note, newest first:\n#1: survives restarts");
    await rm(dir, { recursive: true, force: true });
  });

  it("reports the quota and bad input as tool errors", async () => {
    const c = await client({ kv: { quotaBytes: 200 } }, await tempDir());
    const r1 = await c.call("memory", { action: "remember", note: "x".repeat(150) }, { peer: "e" });
    expect(r1).toEqual(ok("Remembered note #1."));
    const r2 = await c.call("memory", { action: "remember", note: "y".repeat(150) }, { peer: "e" });
    expect(r2.isError).toBe(true);
    expect(r2.content).toMatch(/^memory store error: .*quota/);
    expect((await c.call("memory", { action: "remember", note: "z".repeat(2001) })).content).toMatch(/longer than 2000 characters/);
    expect((await c.call("memory", { action: "remember" })).content).toBe("'remember' needs 'note', a non-empty string");
    expect((await c.call("memory", { action: "forget", id: "one" })).content).toBe("'forget' needs 'id', the number of a note (as shown by recall)");
    expect((await c.call("memory", { action: "dance" })).content).toBe("unknown action 'dance' (expected remember, recall or forget)");
    expect((await c.call("memory", [1, 2])).isError).toBe(true);
  });

  it("says plainly that it needs the kv grant", async () => {
    const c = await client({} as never);
    const r = await c.call("memory", { action: "recall" });
    expect(r.isError).toBe(true);
    expect(r.content).toMatch(/^memory is not available: the operator has not granted this plugin the 'kv' capability \(.*not granted.*\)$/);
  });
});
