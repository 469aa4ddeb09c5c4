/** Turn control options of `[[agents]]`: `loop_limit` and queue mode `steer`. */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../host/src/config/index.js";
import { DEFAULT_LOOP_LIMIT } from "../../host/src/config/types.js";

const dir = mkdtempSync(join(tmpdir(), "exoclaw-turnctl-config-"));

function load(toml: string | undefined) {
  let file: string | undefined;
  if (toml !== undefined) {
    file = join(dir, `c${Math.random().toString(36).slice(2)}.toml`);
    writeFileSync(file, toml);
  }
  return loadConfig({ config: file }, { EXOCLAW_STATE_DIR: join(dir, "state") }, []);
}

describe("turn control configuration", () => {
  it("defaults: loop_limit 3, queue mode followup", () => {
    const c = load(undefined);
    expect(DEFAULT_LOOP_LIMIT).toBe(3);
    expect(c.agents[0]!.loopLimit).toBe(3);
    expect(c.agents[0]!.queue.mode).toBe("followup");
  });

  it("reads loop_limit (0 = off) and queue mode steer", () => {
    const c = load('[[agents]]\nid = "a"\nloop_limit = 5\nqueue = { mode = "steer" }\n[[agents]]\nid = "b"\nloop_limit = 0\n');
    expect(c.agents.map((a) => [a.loopLimit, a.queue.mode])).toEqual([
      [5, "steer"],
      [0, "followup"],
    ]);
  });

  it("refuses bad values naming the key", () => {
    expect(() => load('[[agents]]\nid = "main"\nloop_limit = 1\n')).toThrow(/agents\.0\.loop_limit: must be 0 \(off\) or 2-1000/);
    expect(() => load('[[agents]]\nid = "main"\nloop_limit = 2.5\n')).toThrow(/agents\.0\.loop_limit/);
    expect(() => load('[[agents]]\nid = "main"\nqueue = { mode = "steering" }\n')).toThrow(/agents\.0\.queue\.mode/);
  });
});
