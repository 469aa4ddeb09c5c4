/**
 * What the embedded engine's open does outside its directory. SurrealDB computes each RAM-sized
 * default with `sysinfo::System::new_all()`, which reads six files of every process and every
 * thread on the machine (~880 files with 84 processes here, ~60 ms of a ~270 ms RocksDB open at
 * load 3). The store sets every variable the engine would size that way (`surreal/memory.ts`), so
 * the open must read no other process's `/proc` entry. Linux with `strace` only (skipped elsewhere).
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { engineMemoryEnv } from "../../host/src/store/surreal/memory.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
// `strace` present and allowed to trace here (containers may forbid ptrace).
const hasStrace = process.platform === "linux" && spawnSync("strace", ["-o", "/dev/null", "true"]).status === 0;
const root = mkdtempSync(join(tmpdir(), "exoclaw-engine-open-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

// Opens `<engine>://<dir>` with @surrealdb/node's native binding alone (the engine's own open,
// nothing of exoclaw's) and prints the process id.
const CHILD = `
const { createRequire } = await import("node:module");
await import("@surrealdb/node");
const cache = createRequire(process.cwd() + "/").cache;
const binding = Object.values(cache).find((m) => m?.exports?.SurrealNodeEngine)?.exports;
await binding.SurrealNodeEngine.connect(process.argv[1]);
process.stdout.write(String(process.pid));
process.exit(0);
`;

/** The other processes' pids whose /proc entries the engine's open read. */
function otherProcsRead(engine: "rocksdb" | "surrealkv"): number[] {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("SURREAL_")) env[k] = v;
  Object.assign(env, engineMemoryEnv(env));
  const trace = join(root, `${engine}.strace`);
  const run = spawnSync(
    "strace",
    ["-f", "-e", "trace=openat,open", "-o", trace, process.execPath, "--input-type=module", "-e", CHILD, `${engine}://${join(root, engine)}`],
    { cwd: ROOT, env, encoding: "utf8", timeout: 60_000 },
  );
  expect(run.status, run.stderr).toBe(0);
  const self = Number(run.stdout);
  const pids = new Set<number>();
  for (const m of readFileSync(trace, "utf8").matchAll(/"\/proc\/(\d+)\//g)) if (Number(m[1]) !== self) pids.add(Number(m[1]));
  return [...pids];
}

describe.skipIf(!hasStrace)("opening the embedded engine", () => {
  it("reads no other process's /proc files (RocksDB)", () => {
    expect(otherProcsRead("rocksdb")).toEqual([]);
  });

  it("reads no other process's /proc files (SurrealKV)", () => {
    expect(otherProcsRead("surrealkv")).toEqual([]);
  });
});
