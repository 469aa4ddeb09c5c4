/**
 * Earlier-session recall in a group is per sender (docs/memory.md, Scopes): what member A said
 * in an earlier session of the group (and the agent's replies to A) reaches A's later model
 * requests and `session_search` results, and never member B's, checked at the provider
 * emulator's recorded requests. The
 * owner attribution of lines (a run that answered several members has no owner) is checked on
 * stored-event shapes. Real parts: the runtime, the official SDK adapter, the emulator, the
 * memory session log and the host's note store.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { MEMORY_CONTEXT_PREFIX, MemoryService, NoteStore } from "../../host/src/agent/index.js";
import { textLines } from "../../host/src/agent/memory/sessions.js";
import type { AgentRuntime } from "../../host/src/agent/runtime.js";
import type { AgentMemory } from "../../host/src/config/types.js";
import { silentLogger } from "../../host/src/log/index.js";
import { createMemorySessionLog, type SessionEvent, type SessionLog } from "../../host/src/store/index.js";
import { startEmulator, type Emulator, type RecordedRequest } from "../support/emulator/server.mjs";
import { agentConfig, keyOf, makeRuntime } from "./support.js";

let emulator: Emulator;
beforeAll(async () => {
  emulator = await startEmulator();
});
afterAll(async () => {
  await emulator?.close();
});
beforeEach(() => emulator.reset());

const MEMORY: AgentMemory = { budgetTokens: 1024, notes: 20, recall: 5, share: "sender", sessionRecall: true };
const GROUP = "group-9";

async function setup(memory: AgentMemory = MEMORY) {
  const log: SessionLog = createMemorySessionLog();
  const notes = await NoteStore.open({});
  const service = new MemoryService({ notes, log, logger: silentLogger() });
  const { runtime } = makeRuntime(emulator, [agentConfig({ memory })], { memory: service }, log);
  return { runtime, log };
}

/** One turn of `sender` in the group; returns the model request(s) it made. */
async function say(runtime: AgentRuntime, sender: string, content: string): Promise<RecordedRequest[]> {
  const before = emulator.requests.length;
  await runtime.run({ agentId: "main", sessionKey: keyOf(GROUP), content, sender: { id: sender, name: sender.toUpperCase() } }, () => {});
  return emulator.requests.slice(before);
}

const sent = (req: RecordedRequest) => JSON.stringify({ system: req.body.system, messages: req.body.messages });

function memoryBlock(req: RecordedRequest): string | undefined {
  for (const m of req.body.messages as { role: string; content: string | { type: string; text?: string }[] }[]) {
    const text = typeof m.content === "string" ? m.content : m.content.map((b) => b.text ?? "").join("\n");
    if (m.role === "user" && text.startsWith(MEMORY_CONTEXT_PREFIX)) return text;
  }
  return undefined;
}

describe("group earlier-session recall per sender", () => {
  it("sender A's fact is recalled for A in a later session, never for sender B of the same group", async () => {
    const { runtime, log } = await setup();
    await say(runtime, "u-ann", "my storage locker code is HERON-58");
    await say(runtime, "u-bob", "I keep my bike at the storage locker too");
    // The stored message names its host-written sender (additive data field).
    const stored = (await log.read(keyOf(GROUP))).filter((e) => e.kind === "message_received");
    expect(stored.map((e) => (e.kind === "message_received" ? [e.data.sender, e.data.senderName] : []))).toEqual([
      ["u-ann", "U-ANN"],
      ["u-bob", "U-BOB"],
    ]);
    await runtime.resetSession(keyOf(GROUP));

    // B asks first: nothing of A's, not her message nor the reply that quoted it.
    const [bob] = await say(runtime, "u-bob", "what is the storage locker code HERON?");
    expect(sent(bob!)).not.toContain("HERON-58");
    // B's own earlier line may come back to B.
    expect(memoryBlock(bob!) ?? "").toContain("I keep my bike at the storage locker too");

    // A, in the same later session: her own message and the agent's reply to it.
    const [ann] = await say(runtime, "u-ann", "what is my storage locker code HERON?");
    const block = memoryBlock(ann!);
    expect(block).toMatch(/\[earlier session, user, [\d-]+\] my storage locker code is HERON-58/);
    expect(block).toMatch(/\[earlier session, assistant, [\d-]+\] You said: .*HERON-58/);
    expect(block).not.toContain("bike");

    // session_search in the group: each member finds only their own lines (earlier and current sessions).
    const search = `use:session_search ${JSON.stringify({ query: "storage locker code HERON" })}`;
    const bobSearch = await say(runtime, "u-bob", search);
    const bobResult = bobSearch[1]!.body.messages.at(-1).content[0].content as string;
    expect(bobResult).toMatch(/\[earlier session, seq \d+, user, .* UTC\] I keep my bike at the storage locker too/);
    expect(sent(bobSearch[1]!)).not.toContain("HERON-58");
    const annSearch = await say(runtime, "u-ann", search);
    const annResult = annSearch[1]!.body.messages.at(-1).content[0].content as string;
    expect(annResult).toMatch(/\[earlier session, seq \d+, user, .* UTC\] my storage locker code is HERON-58/);
    expect(annResult).not.toContain("bike");
  });

  it("scope = peer is the operator's choice: every member recalls the group's earlier sessions", async () => {
    const { runtime } = await setup({ ...MEMORY, share: "peer" });
    await say(runtime, "u-ann", "the team offsite is in Lisbon-2027");
    await runtime.resetSession(keyOf(GROUP));
    const [bob] = await say(runtime, "u-bob", "where is the team offsite?");
    expect(memoryBlock(bob!)).toContain("Lisbon-2027");
  });

  it("a reply belongs to a member only when its run answered that member alone", () => {
    const base = { sessionKey: keyOf(GROUP), at: 1 };
    const msg = (seq: number, runId: string, sender: string | undefined, content: string): SessionEvent => ({
      ...base,
      seq,
      runId,
      kind: "message_received",
      data: { content, channel: "ws", account: "default", peer: GROUP, ...(sender !== undefined ? { sender } : {}) },
    });
    const started = (seq: number, runId: string, into: string): SessionEvent => ({ ...base, seq, runId, kind: "turn_started", data: { runId: into } });
    const text = (seq: number, runId: string | undefined, t: string): SessionEvent => ({
      ...base,
      seq,
      ...(runId !== undefined ? { runId } : {}),
      kind: "assistant_text",
      data: { text: t },
    });
    const lines = textLines([
      msg(1, "r1", "u-ann", "ann alone"),
      started(2, "r1", "r1"),
      text(3, "r1", "reply to ann"),
      // r3 (bob's) is folded into r2 (ann's): r2's reply answered both.
      msg(4, "r2", "u-ann", "ann again"),
      msg(5, "r3", "u-bob", "bob meanwhile"),
      started(6, "r2", "r2"),
      started(7, "r3", "r2"),
      text(8, "r2", "reply to both"),
      // No run id: nobody's.
      text(9, undefined, "orphan reply"),
      // No sender: the peer's (a direct chat's shape).
      msg(10, "r4", undefined, "no sender"),
    ]);
    expect(lines.map((l) => [l.text, l.owner])).toEqual([
      ["ann alone", "u-ann"],
      ["reply to ann", "u-ann"],
      ["ann again", "u-ann"],
      ["bob meanwhile", "u-bob"],
      ["reply to both", undefined],
      ["orphan reply", undefined],
      ["no sender", GROUP],
    ]);
  });
});
