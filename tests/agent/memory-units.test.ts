/**
 * The memory parts alone: the BM25 index, the note store (scopes, persistence, damaged lines),
 * and the memory block's budget and source marks.
 */
import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { assembleMemory, MEMORY_CONTEXT_PREFIX, NoteStore, readable, TextIndex, tokenize, type MemoryScope } from "../../host/src/agent/memory/index.js";

const dir = mkdtempSync(join(tmpdir(), "exoclaw-memory-units-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const scope = (over: Partial<MemoryScope> = {}): MemoryScope => ({ agent: "main", channel: "telegram", account: "bot", peer: "42", sender: "42", ...over });

describe("TextIndex (BM25)", () => {
  it("ranks documents with more and rarer query words first; any word matches; removal is exact", () => {
    const idx = new TextIndex<number>();
    idx.add(1, "the cat sat on the mat");
    idx.add(2, "a dog chased the cat around the garden");
    idx.add(3, "quantum chromodynamics lecture notes");
    idx.add(4, "cat cat cat");
    for (let i = 10; i < 60; i++) idx.add(i, `filler document number ${i} about gardening`);
    expect(idx.search("dog cat", 3).map((h) => h.id)).toEqual([2, 4, 1]);
    expect(idx.search("chromodynamics", 5).map((h) => h.id)).toEqual([3]);
    expect(idx.search("the a of", 5)).toEqual([]); // stop words only
    expect(idx.remove(2)).toBe(true);
    expect(idx.remove(2)).toBe(false);
    expect(idx.search("dog", 5)).toEqual([]);
    idx.add(4, "now about dogs only");
    expect(idx.search("cat", 5).map((h) => h.id)).toEqual([1]);
    expect(idx.size).toBe(53);
  });

  it("tokenizes Unicode letters and digits, lower-cased, without English stop words", () => {
    expect(tokenize("Über die Straße: ROOM 42, the café's Wi-Fi!")).toEqual(["über", "die", "straße", "room", "42", "café", "wi", "fi"]);
  });
});

describe("NoteStore", () => {
  it("keeps notebooks apart by agent, channel, account, peer and sender; shares widen only within an agent", async () => {
    const notes = await NoteStore.open();
    await notes.add(scope(), "peer 42 likes jazz");
    await notes.add(scope({ peer: "g1", sender: "u1" }), "u1 likes jazz in the group");
    await notes.add(scope({ peer: "g1", sender: "u2" }), "u2 hates jazz");
    await notes.add(scope({ agent: "other" }), "other agent: 42 likes jazz");
    await notes.add(scope({ channel: "slack" }), "slack 42 likes jazz");
    const texts = (s: MemoryScope, share: "sender" | "peer" | "agent") =>
      notes
        .search(s, share, "jazz", 10)
        .map((h) => h.note.text)
        .sort();
    expect(texts(scope(), "sender")).toEqual(["peer 42 likes jazz"]);
    expect(texts(scope({ peer: "g1", sender: "u1" }), "sender")).toEqual(["u1 likes jazz in the group"]);
    expect(texts(scope({ peer: "g1", sender: "u1" }), "peer")).toEqual(["u1 likes jazz in the group", "u2 hates jazz"]);
    expect(texts(scope(), "agent")).toEqual(["peer 42 likes jazz", "slack 42 likes jazz", "u1 likes jazz in the group", "u2 hates jazz"]);
    expect(texts(scope({ agent: "other" }), "agent")).toEqual(["other agent: 42 likes jazz"]);
    expect(readable(scope({ agent: "other" }), scope(), "agent")).toBe(false);
    expect(notes.standing(scope(), "sender", 5).map((n) => n.text)).toEqual(["peer 42 likes jazz"]);
  });

  it("persists to a 0600 file, skips a damaged line, and a delete leaves no trace of the text in the file", async () => {
    const file = join(dir, "a", "notes.jsonl");
    const notes = await NoteStore.open({ file });
    await notes.add(scope(), "first note");
    const second = await notes.add(scope(), "secret second note");
    await notes.add(scope(), "third note");
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, "a")).mode & 0o777).toBe(0o700);
    appendFileSync(file, '{"add": {"id": 9, "tex'); // a torn last write
    const warnings: unknown[] = [];
    const logger = { warn: (o: unknown) => warnings.push(o), error() {}, info() {}, debug() {} } as never;
    const again = await NoteStore.open({ file, logger });
    expect(again.list({}).map((n) => n.text)).toEqual(["first note", "secret second note", "third note"]);
    expect(warnings).toHaveLength(1);
    expect((await again.delete([second.id])).map((n) => n.id)).toEqual([second.id]);
    expect(readFileSync(file, "utf8")).not.toContain("secret second note");
    const next = await again.add(scope(), "fourth note");
    expect(next.id).toBe(4);
    expect((await NoteStore.open({ file })).standing(scope(), "sender", 10).map((n) => n.text)).toEqual(["fourth note", "third note", "first note"]);
  });

  it("refuses empty, too long and over-quota notes", async () => {
    const notes = await NoteStore.open({ maxPerBook: 2 });
    await expect(notes.add(scope(), "   ")).rejects.toThrow(/empty/);
    await expect(notes.add(scope(), "x".repeat(2001))).rejects.toThrow(/at most 2000/);
    await notes.add(scope(), "one");
    await notes.add(scope(), "two");
    await expect(notes.add(scope(), "three")).rejects.toThrow(/full/);
    await notes.add(scope({ sender: "u9" }), "another notebook has room");
  });
});

describe("assembleMemory", () => {
  const note = (id: number, text: string) => ({ ...scope(), id, text, at: Date.UTC(2026, 11, 4) });

  it("marks each item with its source and never goes over the budget", () => {
    const standing = Array.from({ length: 40 }, (_, i) => note(100 - i, `standing note ${i} ${"blah ".repeat(i % 7)}`));
    const noteHits = Array.from({ length: 10 }, (_, i) => ({ note: note(200 + i, `recalled note ${i} ${"word ".repeat(i * 3)}`), score: 10 - i }));
    const sessionHits = Array.from({ length: 10 }, (_, i) => ({ line: { seq: i + 1, role: "user" as const, text: `earlier line ${i}`, at: 0 }, score: 5 - i }));
    for (const budgetTokens of [0, 10, 40, 60, 100, 200, 500, 5000]) {
      const out = assembleMemory({ standing, noteHits, sessionHits, budgetTokens });
      if (out.messages.length === 0) continue;
      const text = (out.messages[0]!.content[0] as { text: string }).text;
      expect(text.startsWith(MEMORY_CONTEXT_PREFIX)).toBe(true);
      expect(Math.ceil(text.length / 4)).toBeLessThanOrEqual(budgetTokens);
      expect(out.tokens).toBeLessThanOrEqual(budgetTokens);
    }
    const all = assembleMemory({ standing: standing.slice(0, 2), noteHits: noteHits.slice(0, 1), sessionHits: sessionHits.slice(0, 1), budgetTokens: 5000 });
    const text = (all.messages[0]!.content[0] as { text: string }).text;
    expect(text).toContain("- [note #100, 2026-12-04] standing note 0");
    expect(text).toContain("- [note #200, 2026-12-04] recalled note 0");
    expect(text).toContain("- [earlier session, user, 1970-01-01] earlier line 0");
    expect(all.items.map((i) => [i.source, i.why])).toEqual([
      ["note", "standing"],
      ["note", "standing"],
      ["note", "recalled"],
      ["session", "recalled"],
    ]);
    expect(all.messages[1]).toEqual({ role: "assistant", content: [{ type: "text", text: "Noted." }] });
    // A note both standing and recalled is shown once.
    const once = assembleMemory({ standing: [note(1, "tea")], noteHits: [{ note: note(1, "tea"), score: 1 }], sessionHits: [], budgetTokens: 500 });
    expect(once.items).toHaveLength(1);
  });
});
