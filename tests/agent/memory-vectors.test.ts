/**
 * Note vectors kept in the store (docs/memory.md, "Storage"): with an embedded SurrealDB store
 * on disk, a note embedded before a restart is not embedded again after it (the embedding call
 * carries only the message) and is still recalled by meaning; forgetting a peer deletes its
 * notes' stored vectors with the notes; a stored vector whose note changed (an id reused after a
 * delete) is not used and is deleted. Real parts: embedded SurrealDB (`rocksdb://` and `surrealkv://`, behind the
 * journal, as a gateway opens it), the runtime, the OpenAI SDK against the emulator's embeddings
 * endpoint, the note store's file.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemoryService, NoteStore, notesFile } from "../../host/src/agent/index.js";
import { createEmbedder, type Embedder } from "../../host/src/agent/memory/index.js";
import type { AgentMemory } from "../../host/src/config/types.js";
import { openSessionLog, openVectorTable, type SessionLog, type VectorTable } from "../../host/src/store/index.js";
import { silentLogger } from "../../host/src/log/index.js";
import { startEmulator, type Emulator } from "../support/emulator/server.mjs";
import { agentConfig, keyOf, makeRuntime } from "./support.js";

let emulator: Emulator;
let dir: string;
beforeAll(async () => {
  emulator = await startEmulator();
  dir = mkdtempSync(join(tmpdir(), "exoclaw-memory-vectors-"));
});
afterAll(async () => {
  await emulator?.close();
  rmSync(dir, { recursive: true, force: true });
});

const MODEL = "openai/embed-test";
const POLICY: AgentMemory = {
  budgetTokens: 1024,
  notes: 0,
  recall: 5,
  share: "sender",
  sessionRecall: false,
  embeddings: { provider: "openai", model: "embed-test" },
};
const remember = (note: string) => `use:memory ${JSON.stringify({ action: "remember", note })}`;

/** A "gateway": the store, notes file and vector table of `dir` opened as app.ts does, an embedder that counts the texts it embeds. */
async function start(stateDir: string, engine: "rocksdb" | "surrealkv") {
  const store = { url: `${engine}://${join(stateDir, "data")}` };
  const log: SessionLog = await openSessionLog(store);
  const vectors = (await openVectorTable(store))!;
  const notes = await NoteStore.open({ file: notesFile(stateDir) });
  const embedded: string[] = [];
  const real = createEmbedder("openai", { apiKey: "sk-test", baseUrl: `${emulator.url}/v1`, timeoutMs: 60_000 });
  const counting: Embedder = (model, texts, signal) => {
    embedded.push(...texts);
    return real(model, texts, signal);
  };
  const memory = new MemoryService({ notes, log, logger: silentLogger(), embedders: () => counting, vectors });
  const { runtime } = makeRuntime(emulator, [agentConfig({ memory: POLICY })], { memory }, log);
  const turn = async (content: string, peer = "alice") => {
    const before = emulator.requests.length;
    await runtime.run({ agentId: "main", sessionKey: keyOf(peer), content }, () => {});
    return JSON.stringify(emulator.requests.slice(before).map((r) => r.body.messages));
  };
  const stop = async () => {
    await notes.flush();
    await vectors.close();
    await log.close();
  };
  return { log, notes, memory, runtime, vectors, embedded, turn, stop };
}

/** Note ids with a stored vector for {@link MODEL}. */
const storedNotes = async (t: VectorTable) => (await t.load(MODEL)).map((r) => r.note).sort((a, b) => a - b);

describe.each(["rocksdb", "surrealkv"] as const)("note vectors in the store (%s)", (engine) => {
  it("survive a restart (not embedded again), and are deleted with a forgotten peer's notes", async () => {
    const stateDir = join(dir, engine, "restart");
    const g1 = await start(stateDir, engine);
    await g1.turn(remember("Alice's dog is called Rex"));
    await g1.turn(remember("Bob's cat is called Tom"), "bob");
    await g1.turn("my puppy");
    await g1.turn("my kitten", "bob");
    // Each note was embedded once, with the first turn that could read it.
    expect(g1.embedded.filter((t) => t === "Alice's dog is called Rex" || t === "Bob's cat is called Tom").length).toBe(2);
    await expect.poll(() => storedNotes(g1.vectors)).toEqual([1, 2]);
    await g1.stop();

    const g2 = await start(stateDir, engine);
    // What the gateway does at start for its configured models (app.ts); g3 below reads them lazily instead.
    await g2.memory.preloadVectors([MODEL]);
    const recalled = await g2.turn("my puppy");
    expect(recalled).toMatch(/\[note #1, [\d-]+, similar\] Alice's dog is called Rex/);
    // Only the message was embedded: the note's vector came from the store.
    expect(g2.embedded).toEqual(["my puppy"]);

    const forgotten = await g2.runtime.forgetPeer({ peer: "alice" });
    expect(forgotten.notes).toBe(1);
    // Gone from the store as soon as forgetting returns; Bob's stays.
    expect(await storedNotes(g2.vectors)).toEqual([2]);
    await g2.stop();

    const g3 = await start(stateDir, engine);
    expect(await g3.turn("my puppy")).not.toContain("Rex");
    expect(await storedNotes(g3.vectors)).toEqual([2]);
    await g3.stop();
  });

  it("a stored vector whose note changed (id reused) is not used, and is deleted", async () => {
    const stateDir = join(dir, engine, "stale");
    const g1 = await start(stateDir, engine);
    await g1.turn(remember("the boat is moored at pier seven"));
    await g1.turn("where is the boat?");
    await expect.poll(() => storedNotes(g1.vectors)).toEqual([1]);
    // A vector for note 1 that was not made from it (as if its delete never reached the store and the id was reused).
    await g1.vectors.delete([1]);
    await g1.vectors.put(MODEL, [{ note: 1, sum: 12345, vector: new Float32Array([1, 0, 0]) }]);
    await g1.stop();

    const g2 = await start(stateDir, engine);
    await g2.turn("where is the boat?");
    // The note is embedded again (its stored vector did not match) and the stale row replaced.
    expect(g2.embedded).toEqual(["where is the boat?", "the boat is moored at pier seven"]);
    await expect.poll(async () => (await g2.vectors.load(MODEL)).map((r) => [r.note, r.vector.length])).toEqual([[1, expect.any(Number)]]);
    expect((await g2.vectors.load(MODEL))[0]!.sum).not.toBe(12345);
    await g2.stop();
  });
});
