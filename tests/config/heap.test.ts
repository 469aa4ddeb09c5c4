/** `[gateway] heap` / `EXOCLAW_HEAP`: how V8 sizes the gateway's heap (host/src/cli/heap.ts). */
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "esbuild";
import { describe, expect, it } from "vitest";
import { COMPACT_HEAP_FLAGS, COMPACT_YOUNG_BYTES, applyHeapMode } from "../../host/src/cli/heap.js";
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
    expect(applyHeapMode("compact").slice(0, COMPACT_HEAP_FLAGS.length)).toEqual([...COMPACT_HEAP_FLAGS]);
  });

  // In a fresh process (this one's heap has grown already): V8 reads the growth factor at run
  // time, so the young generation grows under churn and stops at the cap, not at V8's 32 MiB
  // maximum nor where it started.
  it("compact lets the young generation grow to its cap and no further", async () => {
    const bundle = join(dir, "heap.mjs");
    await build({
      entryPoints: ["host/src/cli/heap.ts"],
      outfile: bundle,
      bundle: true,
      packages: "external",
      platform: "node",
      format: "esm",
      logLevel: "warning",
    });
    const script = join(dir, "churn.mjs");
    writeFileSync(
      script,
      `import { getHeapSpaceStatistics } from "node:v8";
import { applyHeapMode } from ${JSON.stringify(bundle)};
applyHeapMode(process.argv[2]);
const young = () => getHeapSpaceStatistics().find((s) => s.space_name === "new_space").space_size;
let max = 0;
const keep = [];
for (let round = 0; round < 150; round++) {
  for (let i = 0; i < 20000; i++) {
    const o = { i, list: [i, i + 1], s: "x" + i };
    if (i % 3 === 0) keep.push(o);
    if (keep.length > 100000) keep.splice(0, 50000);
  }
  await new Promise((r) => setTimeout(r, 2));
  max = Math.max(max, young());
}
console.log(JSON.stringify({ max }));
`,
    );
    const maxYoung = (mode: string) => JSON.parse(execFileSync(process.execPath, [script, mode], { encoding: "utf8" })).max as number;
    expect(maxYoung("compact")).toBe(COMPACT_YOUNG_BYTES);
    expect(maxYoung("throughput")).toBeGreaterThan(COMPACT_YOUNG_BYTES);
  }, 60_000);
});
