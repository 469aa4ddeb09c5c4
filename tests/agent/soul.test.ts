/**
 * Soul files: the system prompt is `system_prompt` + a blank line + the file, re-read when the
 * file changes; checked at the provider emulator's recorded requests.
 */
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { joinSystemPrompt } from "../../host/src/agent/index.js";
import { startEmulator, type Emulator } from "../support/emulator/server.mjs";
import { agentConfig, keyOf, makeRuntime, ofKind, recordingLogger, send } from "./support.js";

let emulator: Emulator;
let dir: string;
beforeAll(async () => {
  emulator = await startEmulator();
  dir = mkdtempSync(join(tmpdir(), "exoclaw-soul-"));
});
afterAll(async () => {
  await emulator?.close();
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => emulator.reset());

describe("joinSystemPrompt", () => {
  it.each([
    [undefined, undefined, undefined],
    ["P", undefined, "P"],
    [undefined, "S", "S"],
    ["", "S", "S"],
    ["P", "", "P"],
    ["P", "S", "P\n\nS"],
  ])("(%j, %j) -> %j", (p, s, want) => expect(joinSystemPrompt(p, s)).toBe(want));
});

describe("soul files", () => {
  it("is the system prompt, reloaded when the file changes; the last good content survives a missing file", async () => {
    const soul = join(dir, "support.md");
    writeFileSync(soul, "# Soul v1\nYou are Ada.\n");
    const logger = recordingLogger();
    const { runtime } = makeRuntime(emulator, [agentConfig({ systemPrompt: "Be brief.", soulFile: soul })], { logger });
    await send(runtime, "hello");
    expect(emulator.requests[0]!.body.system).toBe("Be brief.\n\n# Soul v1\nYou are Ada.");

    // Unchanged file: same prompt (served from the cache).
    await send(runtime, "again");
    expect(emulator.requests[1]!.body.system).toBe("Be brief.\n\n# Soul v1\nYou are Ada.");

    // Same size, new mtime: still noticed.
    writeFileSync(soul, "# Soul v2\nYou are Bob.\n");
    utimesSync(soul, new Date(), new Date(Date.now() + 5000));
    await send(runtime, "changed?");
    expect(emulator.requests[2]!.body.system).toBe("Be brief.\n\n# Soul v2\nYou are Bob.");

    writeFileSync(soul, "A much longer soul, version three.\n");
    await send(runtime, "and now?");
    expect(emulator.requests[3]!.body.system).toBe("Be brief.\n\nA much longer soul, version three.");

    // Removed (an editor saving by rename): the turn still runs with the last good content, and a warning names the file.
    rmSync(soul);
    await send(runtime, "still there?");
    expect(emulator.requests[4]!.body.system).toBe("Be brief.\n\nA much longer soul, version three.");
    const warn = logger.lines.find((l) => l.level === "warn" && l.msg.includes("soul file"));
    expect(warn?.obj).toMatchObject({ agent: "main", soulFile: soul });
  });

  it("a soul file alone is the whole system prompt", async () => {
    const soul = join(dir, "alone.md");
    writeFileSync(soul, "Only the soul.");
    const { runtime } = makeRuntime(emulator, [agentConfig({ soulFile: soul })]);
    await send(runtime, "hi");
    expect(emulator.requests[0]!.body.system).toBe("Only the soul.");
  });

  it("a soul file that was never readable fails the turn with an error naming the file, journaled", async () => {
    const missing = join(dir, "nope.md");
    const { runtime, log } = makeRuntime(emulator, [agentConfig({ soulFile: missing })]);
    const err = await send(runtime, "hi").catch((e: unknown) => e);
    expect(err).toMatchObject({ code: -32603 });
    expect((err as Error).message).toContain(missing);
    expect((err as Error).message).toContain('agent "main"');
    expect(emulator.requests).toHaveLength(0);
    const errors = ofKind(await log.read(keyOf("alice")), "error");
    expect(errors).toHaveLength(1);
    expect(await log.pendingTurns()).toEqual([]);
  });

  it("compaction estimates with the soul included: a large soul compacts a history that would fit without it", async () => {
    const soul = join(dir, "big.md");
    writeFileSync(soul, "x".repeat(3000));
    const without = makeRuntime(emulator, [agentConfig({ contextWindow: 1000, tools: [] })]);
    const withSoul = makeRuntime(emulator, [agentConfig({ contextWindow: 1000, tools: [], soulFile: soul })]);
    for (const { runtime } of [without, withSoul]) for (let i = 0; i < 4; i++) await send(runtime, `message ${i} ${"pad ".repeat(60)}`);
    expect(ofKind(await without.log.read(keyOf("alice")), "compaction")).toHaveLength(0);
    expect(ofKind(await withSoul.log.read(keyOf("alice")), "compaction").length).toBeGreaterThan(0);
  });
});
