/**
 * Memory in context assembly (docs/memory.md), checked at the provider emulator's recorded
 * requests: what one session learned (a note the model wrote, or what the user said) reaches a
 * later session's model request for the same agent + peer (+ sender), and never another peer's,
 * another group member's or another agent's; the token budget holds; forgetting a peer removes
 * it from recall and from the log. Real parts: the runtime, the official SDK adapters, the
 * emulator, the memory session log and the host's note store.
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { MEMORY_CONTEXT_PREFIX, MemoryService, NoteStore } from "../../host/src/agent/index.js";
import { createEmbedder, type Embedder, type EmbeddingProvider } from "../../host/src/agent/memory/index.js";
import type { AgentRuntime } from "../../host/src/agent/runtime.js";
import type { AgentMemory } from "../../host/src/config/types.js";
import { createMemorySessionLog, type SessionLog } from "../../host/src/store/index.js";
import { silentLogger } from "../../host/src/log/index.js";
import { startEmulator, type Emulator, type RecordedRequest } from "../support/emulator/server.mjs";
import { agentConfig, keyOf, makeRuntime } from "./support.js";

let emulator: Emulator;
let dir: string;
beforeAll(async () => {
  emulator = await startEmulator();
  dir = mkdtempSync(join(tmpdir(), "exoclaw-memory-"));
});
afterAll(async () => {
  await emulator?.close();
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => emulator.reset());

const MEMORY: AgentMemory = { budgetTokens: 1024, notes: 20, recall: 5, share: "sender", sessionRecall: true };

/** A runtime with agents `main` and `other` (both with memory unless told), on one log and one note store. */
async function setup(
  over: { memory?: AgentMemory; otherMemory?: AgentMemory; notesFile?: string; embedders?: (p: EmbeddingProvider) => Embedder | undefined } = {},
) {
  const log: SessionLog = createMemorySessionLog();
  const notes = await NoteStore.open({ file: over.notesFile });
  const memory = new MemoryService({ notes, log, logger: silentLogger(), embedders: over.embedders });
  const { runtime } = makeRuntime(
    emulator,
    [agentConfig({ memory: over.memory ?? MEMORY }), agentConfig({ id: "other", memory: over.otherMemory ?? MEMORY })],
    { memory },
    log,
  );
  return { runtime, log, notes, memory };
}

/** One turn as `peer` (and `sender` in a group) of `agent`; returns the model request(s) it made. */
async function turn(runtime: AgentRuntime, content: string, o: { peer?: string; agent?: string; sender?: string; channel?: string } = {}) {
  const agent = o.agent ?? "main";
  const before = emulator.requests.length;
  await runtime.run(
    {
      agentId: agent,
      sessionKey: keyOf(o.peer ?? "alice", agent, o.channel ?? "ws"),
      content,
      ...(o.sender !== undefined ? { sender: { id: o.sender } } : {}),
    },
    () => {},
  );
  return emulator.requests.slice(before);
}

/** Every text the model was sent in a request (system, messages, tool results), joined. */
function sent(req: RecordedRequest): string {
  return JSON.stringify({ system: req.body.system, messages: req.body.messages });
}

/** The memory block of a request (the user message starting with the prefix), or undefined. */
function memoryBlock(req: RecordedRequest): string | undefined {
  for (const m of req.body.messages as { role: string; content: string | { type: string; text?: string }[] }[]) {
    const text = typeof m.content === "string" ? m.content : m.content.map((b) => b.text ?? "").join("\n");
    if (m.role === "user" && text.startsWith(MEMORY_CONTEXT_PREFIX)) return text;
  }
  return undefined;
}

const remember = (note: string) => `use:memory ${JSON.stringify({ action: "remember", note })}`;

describe("memory in context assembly", () => {
  it("a note written in session 1 is in session 2's model request for the same agent and peer, marked with its source", async () => {
    const { runtime } = await setup();
    const first = await turn(runtime, remember("Alice's dog is called Rex"));
    // The model called the host's memory tool and saw its result.
    expect(first[1]!.body.messages.at(-1).content[0].content).toContain("Remembered note #1");
    await runtime.resetSession(keyOf("alice"));
    const [req] = await turn(runtime, "what is my dog called?");
    const block = memoryBlock(req!);
    expect(block).toBeDefined();
    expect(block).toMatch(/\[note #1, \d{4}-\d\d-\d\d\] Alice's dog is called Rex/);
    // The block is the exchange just before the new message (system prompt untouched).
    const messages = req!.body.messages as { role: string; content: { text?: string }[] }[];
    expect(messages.at(-1)!.content[0]!.text).toBe("what is my dog called?");
    expect(messages.at(-3)!.content[0]!.text).toBe(block);
    expect(req!.body.system ?? "").not.toContain("Rex");
  });

  it("what the user said in an earlier session is recalled for a related message", async () => {
    const { runtime } = await setup();
    await turn(runtime, "my cat is named Tigger and she hates rain");
    await runtime.resetSession(keyOf("alice"));
    const [req] = await turn(runtime, "Should my cat go outside in the rain today?");
    expect(memoryBlock(req!)).toMatch(/\[earlier session, user, [\d-]+\] my cat is named Tigger and she hates rain/);
    // Nothing related: no block at all.
    await runtime.resetSession(keyOf("alice"));
    const [unrelated] = await turn(runtime, "How do volcanoes form?");
    expect(memoryBlock(unrelated!)).toBeUndefined();
  });

  it("never reaches another peer, another agent, or another sender in the same group", async () => {
    const { runtime } = await setup();
    await turn(runtime, remember("the launch code is PELICAN-42"));
    await turn(runtime, "PELICAN-42 is the code for my locker");
    await runtime.resetSession(keyOf("alice"));
    // Same agent, same peer: present.
    expect(sent((await turn(runtime, "what is the locker code PELICAN?"))[0]!)).toContain("PELICAN-42");
    // Another peer of the same agent.
    const bob = await turn(runtime, "what is the locker code PELICAN?", { peer: "bob" });
    expect(sent(bob[0]!)).not.toContain("PELICAN-42");
    expect(memoryBlock(bob[0]!)).toBeUndefined();
    // Another agent with the same peer.
    const other = await turn(runtime, "what is the locker code PELICAN?", { agent: "other" });
    expect(sent(other[0]!)).not.toContain("PELICAN-42");

    // A group: u1 writes a note; u2 in the same group never sees it, u1 does.
    // (The group's current session is one conversation everyone in it sees; memory is about later sessions.)
    await turn(runtime, remember("u1 is allergic to walnuts"), { peer: "group-7", sender: "u1" });
    await runtime.resetSession(keyOf("group-7"));
    const u2 = await turn(runtime, "am I allergic to walnuts?", { peer: "group-7", sender: "u2" });
    expect(sent(u2[0]!)).not.toContain("u1 is allergic");
    expect(memoryBlock(u2[0]!)).toBeUndefined();
    const u1 = await turn(runtime, "am I allergic to walnuts?", { peer: "group-7", sender: "u1" });
    expect(memoryBlock(u1[0]!)).toContain("u1 is allergic to walnuts");
    // Both built-ins are offered in a group; session_search and earlier-session recall per sender: memory-groups.test.ts.
    expect((u1[0]!.body.tools as { name: string }[]).map((t) => t.name)).toContain("memory");
    expect((u1[0]!.body.tools as { name: string }[]).map((t) => t.name)).toContain("session_search");
  });

  it("a shared scope is the operator's choice: scope = peer lets every sender of a group read the chat's notes", async () => {
    const { runtime } = await setup({ memory: { ...MEMORY, share: "peer" } });
    await turn(runtime, remember("the team standup is at 9:15"), { peer: "group-9", sender: "u1" });
    const u2 = await turn(runtime, "when is the standup?", { peer: "group-9", sender: "u2" });
    expect(memoryBlock(u2[0]!)).toContain("the team standup is at 9:15");
    // Still not across peers.
    const dm = await turn(runtime, "when is the standup?", { peer: "u2" });
    expect(memoryBlock(dm[0]!)).toBeUndefined();
  });

  it("respects the agent's token budget, whatever is stored", async () => {
    const budgetTokens = 120;
    const { runtime, notes } = await setup({ memory: { ...MEMORY, budgetTokens } });
    const scope = { agent: "main", channel: "ws", account: "default", peer: "alice", sender: "alice" };
    for (let i = 0; i < 300; i++) await notes.add(scope, `fact ${i} about gardening: tomatoes need ${i} litres of water and plenty of sun every week`);
    const [req] = await turn(runtime, "how much water do tomatoes need?");
    const block = memoryBlock(req!)!;
    expect(block).toContain("tomatoes");
    expect(Math.ceil(block.length / 4)).toBeLessThanOrEqual(budgetTokens);
    // Budget 0: no block.
    const zero = await setup({ memory: { ...MEMORY, budgetTokens: 0 } });
    await zero.notes.add(scope, "tomatoes like sun");
    const [none] = await turn(zero.runtime, "tomatoes?");
    expect(memoryBlock(none!)).toBeUndefined();
  });

  it("forgetting a peer removes it from recall and from the log, and leaves others alone", async () => {
    const file = join(dir, "forget", "notes.jsonl");
    const { runtime, log, notes } = await setup({ notesFile: file });
    await turn(runtime, remember("Alice lives at 12 Quay Street"));
    await turn(runtime, "my flat at Quay Street has a blue door");
    await turn(runtime, remember("Bob likes Quay Street cafes"), { peer: "bob" });
    await turn(runtime, remember("group fact by alice about Quay Street"), { peer: "g1", sender: "alice" });
    expect(readFileSync(file, "utf8")).toContain("12 Quay Street");
    expect(statSync(file).mode & 0o777).toBe(0o600);

    const result = await runtime.forgetPeer({ peer: "alice" });
    expect(result.sessions).toEqual([keyOf("alice")]);
    expect(result.notes).toBe(2); // her chat's note and the one she wrote as a group sender
    expect(await log.info(keyOf("alice"))).toBeUndefined();
    expect(await log.search("Quay")).toEqual(
      expect.not.arrayContaining([expect.objectContaining({ event: expect.objectContaining({ sessionKey: keyOf("alice") }) })]),
    );
    expect(notes.list({ peer: "alice" })).toEqual([]);
    expect(readFileSync(file, "utf8")).not.toContain("12 Quay Street");
    expect(readFileSync(file, "utf8")).toContain("Bob likes Quay Street cafes");

    const [req] = await turn(runtime, "where do I live? Quay Street?");
    expect(sent(req!)).not.toContain("12 Quay Street");
    expect(sent(req!)).not.toContain("blue door");
    // Bob's memory is intact.
    const [b] = await turn(runtime, "any Quay Street cafes?", { peer: "bob" });
    expect(memoryBlock(b!)).toContain("Bob likes Quay Street cafes");
    // Reopening the notes file keeps the deletion.
    const reopened = await NoteStore.open({ file });
    expect(reopened.list({}).map((n) => n.text)).toEqual(["Bob likes Quay Street cafes"]);
  });

  it("session_search finds this peer's own past messages, never another peer's", async () => {
    const { runtime } = await setup();
    await turn(runtime, "the wifi password at the cabin is moose-lake-77");
    await runtime.resetSession(keyOf("alice"));
    const own = await turn(runtime, `use:session_search ${JSON.stringify({ query: "cabin wifi" })}`);
    const result = own[1]!.body.messages.at(-1).content[0].content as string;
    expect(result).toMatch(/\[earlier session, seq \d+, user, .* UTC\] the wifi password at the cabin is moose-lake-77/);
    const bob = await turn(runtime, `use:session_search ${JSON.stringify({ query: "cabin wifi" })}`, { peer: "bob" });
    expect(sent(bob[1]!)).not.toContain("moose-lake-77");
  });

  it("session_search ranks by BM25: lines with the rarer query word come before lines with only the common one", async () => {
    const { runtime } = await setup();
    for (let i = 0; i < 4; i++) await turn(runtime, `the weather is grey again, day ${i}`);
    await turn(runtime, "a zebra crossing by the weather station");
    await runtime.resetSession(keyOf("alice"));
    const out = await turn(runtime, `use:session_search ${JSON.stringify({ query: "weather zebra", limit: 20 })}`);
    const lines = (out[1]!.body.messages.at(-1).content[0].content as string).split("\n");
    const zebra = lines.map((l, i) => (l.includes("zebra") ? i : -1)).filter((i) => i >= 0);
    const common = lines.map((l, i) => (!l.includes("zebra") && l.includes("weather") ? i : -1)).filter((i) => i >= 0);
    expect(zebra.length).toBeGreaterThanOrEqual(2); // the user's line and the reply that repeats it (and this query)
    expect(common.length).toBe(8); // 4 user lines, 4 replies
    expect(Math.max(...zebra)).toBeLessThan(Math.min(...common));
  });

  it.each([
    ["openai", () => ({ apiKey: "sk-test", baseUrl: `${emulator.url}/v1`, timeoutMs: 60_000 })],
    ["ollama", () => ({ baseUrl: emulator.url, timeoutMs: 60_000 })],
    ["gemini", () => ({ apiKey: "gemini-test", baseUrl: emulator.url, timeoutMs: 60_000 })],
  ] as const)("with embeddings (%s SDK), a note is recalled by meaning when no word matches; still per peer", async (provider, endpoint) => {
    // No standing notes: only recall can bring a note in.
    const policy: AgentMemory = { ...MEMORY, notes: 0, embeddings: { provider, model: "embed-test" } };
    const { runtime } = await setup({ memory: policy, embedders: (p) => createEmbedder(p, endpoint()) });
    await turn(runtime, remember("Alice's dog is called Rex"));
    await runtime.resetSession(keyOf("alice"));
    const [req] = await turn(runtime, "my puppy");
    expect(memoryBlock(req!)).toMatch(/\[note #1, [\d-]+, similar\] Alice's dog is called Rex/);
    const [bob] = await turn(runtime, "my puppy", { peer: "bob" });
    expect(memoryBlock(bob!)).toBeUndefined();
    // Without embeddings the same message recalls nothing (no word in common).
    const plain = await setup({ memory: { ...MEMORY, notes: 0 } });
    await turn(plain.runtime, remember("Alice's dog is called Rex"));
    await plain.runtime.resetSession(keyOf("alice"));
    expect(memoryBlock((await turn(plain.runtime, "my puppy"))[0]!)).toBeUndefined();
  });

  it("a failing embeddings endpoint leaves the turn to full-text recall", async () => {
    const policy: AgentMemory = { ...MEMORY, notes: 0, embeddings: { provider: "openai", model: "embed-test" } };
    const { runtime } = await setup({
      memory: policy,
      embedders: (p) => createEmbedder(p, { apiKey: "sk-test", baseUrl: "http://127.0.0.1:9/v1", timeoutMs: 2000 }),
    });
    await turn(runtime, remember("the boat is moored at pier seven"));
    await runtime.resetSession(keyOf("alice"));
    const [req] = await turn(runtime, "where is the boat?");
    expect(memoryBlock(req!)).toContain("[note #1");
  });

  it("an agent without [agents.memory] gets no block and no memory built-ins", async () => {
    const log = createMemorySessionLog();
    const notes = await NoteStore.open();
    await notes.add({ agent: "main", channel: "ws", account: "default", peer: "alice", sender: "alice" }, "tomatoes like sun");
    const { runtime } = makeRuntime(emulator, [agentConfig()], { memory: new MemoryService({ notes, log, logger: silentLogger() }) }, log);
    const [req] = await turn(runtime, "tomatoes?");
    expect(memoryBlock(req!)).toBeUndefined();
    expect(((req!.body.tools ?? []) as { name: string }[]).map((t) => t.name)).not.toContain("memory");
  });
});
