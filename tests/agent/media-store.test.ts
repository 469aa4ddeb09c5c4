// The content-addressed media directory (agent/media-store.ts) and the projection's use of it:
// real files in a temporary state directory.
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { MediaStore, mediaRefsOf } from "../../host/src/agent/media-store.js";
import { projectHistory } from "../../host/src/agent/projection.js";
import type { SessionEvent } from "../../host/src/store/index.js";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function store(maxBytes?: number) {
  const state = mkdtempSync(join(tmpdir(), "exoclaw-media-"));
  dirs.push(state);
  const dir = join(state, "media");
  return { dir, media: new MediaStore({ dir, ...(maxBytes !== undefined ? { maxBytes } : {}) }) };
}
const img = (bytes: Buffer, mime = "image/png") => ({ mime, data: bytes.toString("base64"), bytes: bytes.length });

describe("MediaStore", () => {
  it("stores an image under its sha256 (dir 0700, file 0600) and reads it back; an identical image shares the file", async () => {
    const { dir, media } = store();
    const bytes = Buffer.from("\x89PNG\r\n\x1a\nabc", "latin1");
    const r = media.ref(img(bytes))!;
    expect(r.ref).toEqual({ sha256: createHash("sha256").update(bytes).digest("hex"), mime: "image/png", bytes: bytes.length });
    await media.put(r.ref, r.bytes);
    await media.put(r.ref, r.bytes);
    expect(readdirSync(dir)).toEqual([r.ref.sha256]);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, r.ref.sha256)).mode & 0o777).toBe(0o600);
    const loaded = await media.load([r.ref]);
    expect(loaded.get(r.ref.sha256)).toEqual(img(bytes));
  });

  it("refuses to store an image over its cap, and never reads a file that no longer matches its reference or a name that is not a hash", async () => {
    const { dir, media } = store(10);
    expect(media.ref(img(Buffer.alloc(11)))).toBeUndefined();
    const r = media.ref(img(Buffer.alloc(5, 7)))!;
    await media.put(r.ref, r.bytes);
    writeFileSync(join(dir, r.ref.sha256), Buffer.alloc(5, 8)); // same size, other bytes
    expect((await media.load([r.ref])).size).toBe(0);
    expect((await media.load([{ sha256: "../../etc/passwd", mime: "image/png", bytes: 1 }])).size).toBe(0);
    expect(await media.remove(["../x", "zz"])).toBe(0);
  });

  it("pruneIdle removes files not read for that long; a read restarts the clock", async () => {
    const { dir, media } = store();
    const a = media.ref(img(Buffer.from("a")))!;
    const b = media.ref(img(Buffer.from("b")))!;
    await media.put(a.ref, a.bytes);
    await media.put(b.ref, b.bytes);
    const old = new Date(Date.now() - 10 * 86_400_000);
    utimesSync(join(dir, a.ref.sha256), old, old);
    utimesSync(join(dir, b.ref.sha256), old, old);
    await media.load([b.ref]);
    expect(await media.pruneIdle(86_400_000)).toBe(1);
    expect(readdirSync(dir)).toEqual([b.ref.sha256]);
  });
});

describe("projectHistory with stored images", () => {
  const bytes = Buffer.from("\x89PNG\r\n\x1a\nxyz", "latin1");
  const sha = createHash("sha256").update(bytes).digest("hex");
  const events = [
    {
      seq: 1,
      kind: "message_received",
      runId: "r1",
      data: { content: "look", channel: "telegram", account: "default", peer: "1", media: [{ sha256: sha, mime: "image/png", bytes: bytes.length }] },
    },
    { seq: 2, kind: "turn_started", runId: "r1", data: { runId: "r1" } },
    { seq: 3, kind: "assistant_text", runId: "r1", data: { text: "nice" } },
    { seq: 4, kind: "turn_ended", runId: "r1", data: { runId: "r1" } },
  ] as unknown as SessionEvent[];

  it("rebuilds the image block of an earlier message; without the file only the text remains", () => {
    expect(mediaRefsOf(events)).toEqual([{ sha256: sha, mime: "image/png", bytes: bytes.length }]);
    const withImage = projectHistory(events, new Map([[sha, img(bytes)]]));
    expect(withImage[0]).toEqual({
      role: "user",
      content: [
        { type: "image", mime: "image/png", data: bytes.toString("base64") },
        { type: "text", text: "look" },
      ],
    });
    expect(projectHistory(events, new Map())[0]).toEqual({ role: "user", content: [{ type: "text", text: "look" }] });
    expect(projectHistory(events)[0]).toEqual({ role: "user", content: [{ type: "text", text: "look" }] });
  });
});

describe("a turn re-run after a crash gets its own stored image back", () => {
  it("recover() requeues the message with the image read from the media directory", async () => {
    const { createMemorySessionLog, formatSessionKey } = await import("../../host/src/store/index.js");
    const { startEmulator } = await import("../support/emulator/server.mjs");
    const { agentConfig, makeRuntime, until } = await import("./support.js");
    const emulator = await startEmulator();
    try {
      const { media } = store();
      const bytes = Buffer.from("\x89PNG\r\n\x1a\nrecovered", "latin1");
      const r = media.ref(img(bytes))!;
      await media.put(r.ref, r.bytes);
      const log = createMemorySessionLog();
      const key = formatSessionKey({ agent: "main", channel: "telegram", account: "bot1", peer: "42" });
      // A crashed process: the message was journaled with its image reference, its turn never started.
      await log.append(key, [
        { kind: "message_received", runId: "r-q", data: { content: "see img-rec", channel: "telegram", account: "bot1", peer: "42", media: [r.ref] } },
      ]);
      const { runtime } = makeRuntime(emulator, [agentConfig()], { media }, log);
      expect(await runtime.recover()).toEqual({ rerun: 1, failed: 0 });
      await until(() => emulator.requests.length === 1, 10_000, "the re-run's model request");
      const user = (emulator.requests[0]!.body as any).messages.at(-1);
      expect(user.content).toContainEqual({ type: "image", source: { type: "base64", media_type: "image/png", data: bytes.toString("base64") } });
    } finally {
      await emulator.close();
    }
  });
});

describe("a sent file's content in later turns", () => {
  it("is elided from the send_file call's input in the history (other tools' inputs are kept)", () => {
    const big = "A".repeat(5000);
    const events = [
      { seq: 1, kind: "message_received", runId: "r1", data: { content: "send it", channel: "telegram", account: "default", peer: "1" } },
      { seq: 2, kind: "turn_started", runId: "r1", data: { runId: "r1" } },
      { seq: 3, kind: "tool_use", runId: "r1", data: { id: "t1", name: "send_file", input: { name: "a.png", data_base64: big } } },
      { seq: 4, kind: "tool_use", runId: "r1", data: { id: "t2", name: "other", input: { data_base64: big } } },
      { seq: 5, kind: "tool_result", runId: "r1", data: { toolUseId: "t1", content: "sent", isError: false } },
      { seq: 6, kind: "tool_result", runId: "r1", data: { toolUseId: "t2", content: "ok", isError: false } },
      { seq: 7, kind: "assistant_text", runId: "r1", data: { text: "done" } },
      { seq: 8, kind: "turn_ended", runId: "r1", data: { runId: "r1" } },
    ] as unknown as SessionEvent[];
    const uses = projectHistory(events).flatMap((m) => m.content.filter((b) => b.type === "tool_use")) as { name: string; input: any }[];
    expect(uses[0]!.input).toEqual({ name: "a.png", data_base64: "[5000 characters, omitted from the history]" });
    expect(uses[1]!.input.data_base64).toBe(big);
  });
});
