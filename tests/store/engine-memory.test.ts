import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { createSurrealSessionLog, formatSessionKey, StoreError } from "../../host/src/store/index.js";
import { engineMemoryEnv, parseEngineBytes } from "../../host/src/store/surreal/memory.js";

// The embedded engine sizes its block cache from the machine's RAM unless told otherwise (11 GiB
// on a 24 GiB machine): the store must set the limits before the engine first opens.
const CACHE = "SURREAL_SURREALKV_BLOCK_CACHE_CAPACITY";
const MEMTABLE = "SURREAL_SURREALKV_MAX_MEMTABLE_SIZE";
const root = mkdtempSync(join(tmpdir(), "exoclaw-engine-mem-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("engine memory settings", () => {
  it("parses byte sizes as the engine does", () => {
    expect(parseEngineBytes("1048576")).toBe(1048576);
    expect(parseEngineBytes("64MiB")).toBe(64 * 2 ** 20);
    expect(parseEngineBytes(" 256m ")).toBe(256 * 2 ** 20);
    expect(parseEngineBytes("1G")).toBe(2 ** 30);
    expect(parseEngineBytes("2kb")).toBe(2048);
    expect(parseEngineBytes("64 MB")).toBe(64 * 2 ** 20);
    expect(parseEngineBytes("1.5g")).toBeUndefined();
    expect(parseEngineBytes("lots")).toBeUndefined();
    expect(parseEngineBytes("64TiB")).toBeUndefined();
    expect(parseEngineBytes("")).toBeUndefined();
  });

  const ROCKS = {
    SURREAL_ROCKSDB_BLOCK_CACHE_SIZE: String(64 * 2 ** 20),
    SURREAL_ROCKSDB_WRITE_BUFFER_SIZE: String(16 * 2 ** 20),
    SURREAL_ROCKSDB_MAX_WRITE_BUFFER_NUMBER: "2",
    SURREAL_ROCKSDB_MIN_WRITE_BUFFER_NUMBER_TO_MERGE: "1",
    SURREAL_ROCKSDB_COMPACTION_READAHEAD_SIZE: String(4 * 2 ** 20),
    SURREAL_SURREALKV_VLOG_MAX_FILE_SIZE: String(256 * 2 ** 20),
  };
  const RAM = 24 * 2 ** 30;

  it("defaults SurrealKV's limits to 64 MiB and keeps an operator's valid values", () => {
    expect(engineMemoryEnv({}, RAM)).toEqual({ [CACHE]: String(64 * 2 ** 20), [MEMTABLE]: String(64 * 2 ** 20), ...ROCKS });
    expect(engineMemoryEnv({ [CACHE]: "256m", [MEMTABLE]: " " }, RAM)).toEqual({ [CACHE]: "256m", [MEMTABLE]: String(64 * 2 ** 20), ...ROCKS });
  });

  it("bounds RocksDB: a 64 MiB block cache, two 16 MiB memtables; an operator's sizes are passed as digits", () => {
    expect(engineMemoryEnv({ SURREAL_ROCKSDB_WRITE_BUFFER_SIZE: "32MiB", SURREAL_ROCKSDB_MAX_WRITE_BUFFER_NUMBER: "3" })).toMatchObject({
      SURREAL_ROCKSDB_WRITE_BUFFER_SIZE: String(32 * 2 ** 20),
      SURREAL_ROCKSDB_MAX_WRITE_BUFFER_NUMBER: "3",
    });
    expect(() => engineMemoryEnv({ SURREAL_ROCKSDB_MAX_WRITE_BUFFER_NUMBER: "2MiB" })).toThrow(
      /SURREAL_ROCKSDB_MAX_WRITE_BUFFER_NUMBER="2MiB" is not a whole number/,
    );
    expect(() => engineMemoryEnv({ SURREAL_ROCKSDB_MAX_WRITE_BUFFER_NUMBER: "1" })).toThrow(/below the minimum of 2/);
  });

  // The engine computes a RAM-sized default by reading /proc for every process and thread on the
  // machine (sysinfo's System::new_all, ~60 ms of a RocksDB open at load 3): every variable it sizes
  // from RAM must be set, the ones exoclaw does not bound to the engine's own rule for the RAM.
  it("sets every RAM-sized engine default, so the engine's open scans no /proc", () => {
    const env = engineMemoryEnv({}, RAM);
    for (const name of [
      "SURREAL_SURREALKV_BLOCK_CACHE_CAPACITY",
      "SURREAL_SURREALKV_MAX_MEMTABLE_SIZE",
      "SURREAL_SURREALKV_VLOG_MAX_FILE_SIZE",
      "SURREAL_ROCKSDB_BLOCK_CACHE_SIZE",
      "SURREAL_ROCKSDB_WRITE_BUFFER_SIZE",
      "SURREAL_ROCKSDB_MAX_WRITE_BUFFER_NUMBER",
      "SURREAL_ROCKSDB_COMPACTION_READAHEAD_SIZE",
    ]) {
      expect(env[name], name).toMatch(/^\d+$/);
    }
    const vlog = (ram: number) => Number(engineMemoryEnv({}, ram).SURREAL_SURREALKV_VLOG_MAX_FILE_SIZE) / 2 ** 20;
    expect([2, 8, 32, 128].map((gib) => vlog(gib * 2 ** 30))).toEqual([64, 128, 256, 512]);
    expect(engineMemoryEnv({ SURREAL_ROCKSDB_COMPACTION_READAHEAD_SIZE: "2MiB" }, RAM).SURREAL_ROCKSDB_COMPACTION_READAHEAD_SIZE).toBe(String(2 * 2 ** 20));
  });

  it("rejects a value the engine would ignore, or one below the minimum, naming the variable", () => {
    const bad = (env: NodeJS.ProcessEnv) => {
      try {
        engineMemoryEnv(env);
      } catch (err) {
        return err as StoreError;
      }
      throw new Error("no error");
    };
    const e1 = bad({ [CACHE]: "lots" });
    expect(e1).toBeInstanceOf(StoreError);
    expect(e1.code).toBe("invalid_argument");
    expect(e1.message).toContain(`${CACHE}="lots" is not a byte size`);
    const e2 = bad({ [MEMTABLE]: "1m" });
    expect(e2.code).toBe("invalid_argument");
    expect(e2.message).toContain(`${MEMTABLE}="1m" is below the minimum of 16 MiB`);
  });
});

describe("opening a surrealkv store", () => {
  const saved: Record<string, string | undefined> = {};
  beforeEach(() => {
    for (const k of [CACHE, MEMTABLE]) {
      saved[k] = process.env[k];
      delete process.env[k];
    }
  });
  afterEach(() => {
    for (const k of [CACHE, MEMTABLE]) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  });

  // Runs first in this process: the engine reads the variables once, at its first open.
  it("refuses a bad setting before the engine opens", async () => {
    process.env[CACHE] = "12 parsecs";
    const dir = join(root, "bad");
    const err = await createSurrealSessionLog({ url: `surrealkv://${dir}` }).then(
      () => undefined,
      (e: unknown) => e as StoreError,
    );
    expect(err).toBeInstanceOf(StoreError);
    expect(err?.code).toBe("invalid_argument");
    expect(err?.message).toContain(CACHE);
    expect(existsSync(join(dir, "wal"))).toBe(false);
  });

  it("sets the limits in the environment the engine reads before it opens, and works with them", async () => {
    const log = await createSurrealSessionLog({ url: `surrealkv://${join(root, "ok")}` });
    try {
      expect(process.env[CACHE]).toBe(String(64 * 2 ** 20));
      expect(process.env[MEMTABLE]).toBe(String(64 * 2 ** 20));
      const key = formatSessionKey({ agent: "main", channel: "ws", account: "default", peer: "p" });
      await log.append(key, [{ kind: "assistant_text", data: { text: "hello" } }]);
      expect((await log.read(key)).map((e) => e.seq)).toEqual([1]);
    } finally {
      await log.close();
    }
  });
});
