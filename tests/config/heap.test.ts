/** `[gateway] heap` / `EXOCLAW_HEAP`: how V8 sizes the gateway's heap (host/src/cli/heap.ts). */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { COMPACT_HEAP_FLAGS, applyHeapMode } from "../../host/src/cli/heap.js";
import { loadConfig } from "../../host/src/config/index.js";

const dir = mkdtempSync(join(tmpdir(), "exoclaw-heap-config-"));

function load(toml: string | undefined, env: Record<string, string> = {}) {
  let file: string | undefined;
  if (toml !== undefined) {
    file = join(dir, `c${Math.random().toString(36).slice(2)}.toml`);
    writeFileSync(file, toml);
  }
  return loadConfig({ config: file }, { EXOCLAW_STATE_DIR: join(dir, "state"), ...env }, []);
}

describe("heap configuration", () => {
  it("defaults to compact; the file and then EXOCLAW_HEAP override it", () => {
    expect(load(undefined).gateway.heap).toBe("compact");
    expect(load('[gateway]\nheap = "throughput"\n').gateway.heap).toBe("throughput");
    expect(load('[gateway]\nheap = "throughput"\n', { EXOCLAW_HEAP: "compact" }).gateway.heap).toBe("compact");
  });

  it("refuses an unknown mode, naming the key or the variable", () => {
    expect(() => load('[gateway]\nheap = "small"\n')).toThrow(/gateway\.heap/);
    expect(() => load(undefined, { EXOCLAW_HEAP: "small" })).toThrow(/EXOCLAW_HEAP="small" is not one of compact, throughput/);
  });

  it("compact sets V8's growth flags, throughput none", () => {
    expect(applyHeapMode("throughput")).toEqual([]);
    expect(applyHeapMode("compact")).toEqual([...COMPACT_HEAP_FLAGS]);
  });
});
