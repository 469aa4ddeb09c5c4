// The streamed replies' message ids (host/src/channels/stream-state.ts): a real file under a
// temporary state directory, read back by a new instance as after a restart.
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { StreamedReplies, streamStatePath } from "../../host/src/channels/stream-state.js";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function stateDir(): string {
  const d = mkdtempSync(join(tmpdir(), "exoclaw-stream-state-"));
  dirs.push(d);
  return d;
}
const entry = (platformMessageId: string) => ({ channel: "telegram", account: "default", peer: "42", platformMessageId, at: 1 });

describe("StreamedReplies", () => {
  it("an id remembered is on disk (0600) and read back by the next process; forgetting removes it", async () => {
    const file = streamStatePath(stateDir());
    const warns: string[] = [];
    const a = new StreamedReplies(file, { warn: (_o, m) => void warns.push(m) });
    await a.remember("channel:telegram:default:42:7", entry("42:501"));
    await a.remember("channel:telegram:default:42:8", entry("42:502"));
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(file, "utf8")).replies["channel:telegram:default:42:7"].platformMessageId).toBe("42:501");

    const b = new StreamedReplies(file, { warn: (_o, m) => void warns.push(m) });
    await b.load();
    expect(b.get("channel:telegram:default:42:7")?.platformMessageId).toBe("42:501");
    await b.forget(["channel:telegram:default:42:7"]);
    // Start-up pruning: entries whose reply is no longer owed go.
    await b.forget([], new Set(["something else"]));
    const c = new StreamedReplies(file, { warn: () => {} });
    await c.load();
    expect(c.get("channel:telegram:default:42:7")).toBeUndefined();
    expect(c.get("channel:telegram:default:42:8")).toBeUndefined();
    expect(warns).toEqual([]);
  });

  it("a damaged file is logged and read as empty (those replies go out as new messages), and is replaced on the next write", async () => {
    const file = streamStatePath(stateDir());
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, "{not json");
    const warns: string[] = [];
    const s = new StreamedReplies(file, { warn: (_o, m) => void warns.push(m) });
    await s.load();
    expect(s.get("k")).toBeUndefined();
    expect(warns).toEqual(["the streamed replies file is not valid JSON; ignored"]);
    await s.remember("k", entry("42:9"));
    expect(JSON.parse(readFileSync(file, "utf8")).version).toBe(1);
  });

  it("writes made at once all land, in order (the last state wins)", async () => {
    const file = streamStatePath(stateDir());
    const s = new StreamedReplies(file, { warn: () => {} });
    await Promise.all(Array.from({ length: 20 }, (_, i) => s.remember(`k${i}`, entry(`42:${i}`))));
    const doc = JSON.parse(readFileSync(file, "utf8"));
    expect(Object.keys(doc.replies)).toHaveLength(20);
  });
});
