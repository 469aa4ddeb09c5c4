/**
 * A damaged record in the middle of the RocksDB engine's write-ahead log (`rocksdb://`, the
 * default engine for new stores; issue 21, finding 1 for this engine). Real RocksDB on disk: a
 * child process writes commits and exits, the test damages the real `<dir>/<n>.log` file, then
 * opens the store. Without the check the engine opens such a store silently and keeps only the
 * commits before the damage (RocksDB's point-in-time recovery: the `acceptWalDamage` case below
 * shows it).
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bundleFixture } from "../support/bundle-fixture.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createSurrealSessionLog, formatSessionKey, openSessionLog, StoreCorruptError, type SessionLog } from "../../host/src/store/index.js";
import { openJournalFiles } from "../../host/src/store/journal/index.js";
import { checkRocksDbWal, crc32c, maskCrc } from "../../host/src/store/surreal/rocksdb-wal.js";

const root = mkdtempSync(join(tmpdir(), "exoclaw-rwal-"));
// Inside the repository so the bundle resolves node_modules; matches .gitignore's .exoclaw-test-*/.
let child = "";
let cleanup = () => {};
let dirs = 0;

/** A rocksdb store directory with `appends` commits written by a child process (the first 100 KB: fragments). */
function writtenStore(appends: number): { dir: string; url: string; wal: string } {
  const dir = join(root, `db${++dirs}`);
  const url = `rocksdb://${dir}`;
  const r = spawnSync(process.execPath, [child, url, String(appends), String(100_000)], { encoding: "utf8", timeout: 120_000 });
  expect(r.status, r.stderr).toBe(0);
  expect(JSON.parse(r.stdout.trim().split("\n").pop()!)).toEqual({ events: appends });
  const wals = readdirSync(dir)
    .filter((n) => /^\d+\.log$/.test(n))
    .sort();
  expect(wals.length).toBeGreaterThan(0);
  return { dir, url, wal: join(dir, wals[wals.length - 1]!) };
}

/** Flips `length` bytes at `offset` of `file` (XOR 0xa5). */
function damage(file: string, offset: number, length = 64): void {
  const buf = readFileSync(file);
  for (let i = 0; i < length; i++) buf[offset + i] = (buf[offset + i]! ^ 0xa5) & 0xff;
  writeFileSync(file, buf);
}

async function countEvents(log: SessionLog): Promise<number> {
  let n = 0;
  for (let p = 0; p < 5; p++) n += (await log.read(formatSessionKey({ agent: "main", channel: "cli", account: "local", peer: `p${p}` }))).length;
  return n;
}

beforeAll(async () => {
  ({ child, cleanup } = await bundleFixture(join(import.meta.dirname, "fixtures/wal-child.ts"), "rwal"));
});
afterAll(() => {
  cleanup();
  rmSync(root, { recursive: true, force: true });
});

describe("write-ahead log damage (rocksdb)", () => {
  it("verifies a sound WAL, fragments across 32 KiB blocks included", async () => {
    const { dir, url } = writtenStore(40);
    const check = await checkRocksDbWal(dir);
    expect(check.damage).toBeUndefined();
    expect(check.tornTail).toBeUndefined();
    expect(check.records).toBeGreaterThan(40);
    const log = await createSurrealSessionLog({ url });
    expect(await countEvents(log)).toBe(40);
    await log.close();
  });

  it("refuses to open a store with 64 damaged bytes mid-WAL, names the file and offset, and changes nothing", async () => {
    const { dir, url, wal } = writtenStore(120);
    const size = statSync(wal).size;
    damage(wal, Math.floor(size / 2));
    const before = readFileSync(wal);
    const err = await createSurrealSessionLog({ url }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreCorruptError);
    const corrupt = err as StoreCorruptError;
    expect(corrupt.file).toBe(wal);
    expect(corrupt.offset).toBeGreaterThan(0);
    expect(corrupt.offset).toBeLessThanOrEqual(Math.floor(size / 2));
    expect(corrupt.message).toContain(`${wal} at byte ${corrupt.offset}`);
    expect(corrupt.message).toMatch(/exoclaw store check --accept-loss/);
    expect(readFileSync(wal).equals(before)).toBe(true);
    const check = await checkRocksDbWal(dir);
    expect(check.damage).toMatchObject({ file: wal, offset: corrupt.offset, laterFiles: [] });
    expect(check.damage!.resumesAt).toBeGreaterThan(corrupt.offset);
  });

  it("with acceptWalDamage the engine opens silently without the commits after the damage (why the check exists)", async () => {
    const { url, wal } = writtenStore(60);
    damage(wal, Math.floor(statSync(wal).size * 0.8));
    const warnings: string[] = [];
    const log = await createSurrealSessionLog({ url, acceptWalDamage: true, logger: { info: () => {}, warn: (m) => warnings.push(m) } });
    const kept = await countEvents(log);
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThan(60);
    expect(warnings.some((w) => w.startsWith("opening anyway (accept loss)") && w.includes(wal))).toBe(true);
    await log.close();
  });

  it("opens a store whose WAL ends in a torn record (crash while writing it)", async () => {
    const { dir, url, wal } = writtenStore(30);
    truncateSync(wal, statSync(wal).size - 5);
    const check = await checkRocksDbWal(dir);
    expect(check.damage).toBeUndefined();
    expect(check.tornTail).toMatchObject({ file: wal });
    const log = await createSurrealSessionLog({ url, logger: { info: () => {}, warn: () => {} } });
    expect(await countEvents(log)).toBe(29);
    await log.close();
  });
});

describe("the journal in front of rocksdb", () => {
  it("refuses to open a rocksdb store whose journal segment is damaged in the middle, naming the segment", async () => {
    const dir = join(root, `db${++dirs}`);
    const key = (peer: string) => formatSessionKey({ agent: "main", channel: "cli", account: "local", peer });
    const log = await openSessionLog({ url: `rocksdb://${dir}` });
    expect(await log.append(key("a"), [{ kind: "message_received", data: { content: "hello", channel: "cli", account: "local", peer: "a" } }])).toEqual([1]);
    await log.close();
    // Three segments of records the engine has not seen yet (as after a crash), the first damaged.
    const jdir = join(dir, "journal");
    const files = await openJournalFiles({ dir: jdir, segmentBytes: 1 });
    for (let i = 0; i < 3; i++) await files.append(Buffer.from(JSON.stringify({ t: "d", k: key(`x${i}`), n: i })));
    await files.close();
    const first = readdirSync(jdir).sort()[0]!;
    const bytes = readFileSync(join(jdir, first));
    bytes[10] = bytes[10]! ^ 0xff;
    writeFileSync(join(jdir, first), bytes);
    // A fresh process would open the engine first (its WAL is sound), then the journal.
    const err = await openSessionLog({ url: `rocksdb://${dir}` }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreCorruptError);
    expect((err as StoreCorruptError).file).toBe(join(jdir, first));
  });
});

describe("WAL framing (synthetic files in RocksDB's format)", () => {
  it("computes CRC-32C (RFC 3720 check value) and RocksDB's mask", () => {
    expect(crc32c(Buffer.from("123456789"))).toBe(0xe3069283);
    expect(maskCrc(0)).toBe(0xa282ead8);
  });

  /** One record: masked CRC-32C (little-endian) over type (+ log number) + payload, u16 LE length, type. */
  const record = (type: number, payload: Buffer, logNumber?: number): Buffer => {
    const head = Buffer.alloc(logNumber === undefined ? 7 : 11);
    head.writeUInt16LE(payload.length, 4);
    head[6] = type;
    if (logNumber !== undefined) head.writeUInt32LE(logNumber, 7);
    head.writeUInt32LE(maskCrc(crc32c(Buffer.concat([head.subarray(6), payload]))), 0);
    return Buffer.concat([head, payload]);
  };
  const walDir = (files: Buffer[]): string => {
    const dir = join(root, `synthetic${++dirs}`);
    mkdirSync(dir, { recursive: true });
    files.forEach((b, i) => writeFileSync(join(dir, `${String(i + 4).padStart(6, "0")}.log`), b));
    return dir;
  };
  const p = (s: string) => Buffer.from(s);

  it("reads recyclable records and takes zeros after the last record as a torn tail", async () => {
    const check = await checkRocksDbWal(walDir([Buffer.concat([record(5, p("a"), 4), record(6, p("b"), 4), record(8, p("c"), 4), Buffer.alloc(50)])]));
    expect(check).toMatchObject({ records: 3, tornTail: { offset: 36, bytes: 50 } });
    expect(check.damage).toBeUndefined();
  });

  it("reports a bad record in a file that later files follow as damage, with those files", async () => {
    const first = Buffer.concat([record(1, p("a")), record(1, p("b"))]);
    first[10] = first[10]! ^ 1;
    const dir = walDir([first, record(1, p("c"))]);
    const check = await checkRocksDbWal(dir);
    expect(check.damage).toMatchObject({ offset: 8, reason: "checksum mismatch", laterFiles: [join(dir, "000005.log")] });
  });

  it("reports fragments out of order", async () => {
    const stray = await checkRocksDbWal(walDir([Buffer.concat([record(1, p("a")), record(4, p("b")), record(1, p("c"))])]));
    expect(stray.damage).toMatchObject({ offset: 8, reason: "a last fragment without its first", resumesAt: 16 });
  });
});

describe("engine of a store directory", () => {
  it("refuses a surrealkv URL on a rocksdb directory (and back), naming the right URL", async () => {
    const { dir } = writtenStore(3);
    await expect(openSessionLog({ url: `surrealkv://${dir}` })).rejects.toMatchObject({
      code: "invalid_argument",
      message: expect.stringContaining(`use rocksdb://${dir}`),
    });
    const kv = join(root, `kv${++dirs}`);
    mkdirSync(join(kv, "wal"), { recursive: true });
    await expect(openSessionLog({ url: `rocksdb://${kv}` })).rejects.toMatchObject({
      code: "invalid_argument",
      message: expect.stringContaining(`use surrealkv://${kv}`),
    });
  });
});
