/**
 * A damaged record in the middle of the embedded store's write-ahead log (issue 21, finding 1).
 * Real SurrealKV on disk: a child process writes commits and exits, the test damages the real
 * `data/wal/*.wal` file, then opens the store. Without the check the engine opened such a
 * store silently, cut the WAL at the damage and kept only the commits before it.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { bundleFixture } from "../support/bundle-fixture.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkSurrealKvWal, createSurrealSessionLog, formatSessionKey, StoreCorruptError, type SessionLog } from "../../host/src/store/index.js";

const root = mkdtempSync(join(tmpdir(), "exoclaw-wal-"));
// Inside the repository so the bundle resolves node_modules; matches .gitignore's .exoclaw-test-*/.
let child = "";
let cleanup = () => {};
let dirs = 0;

/**
 * A store directory with `appends` commits written by a child process (the first one 100 KB, so
 * split into fragments; with `toolBytes`, the others are tool calls with an input that long).
 */
function writtenStore(appends: number, toolBytes?: number): { dir: string; url: string; wal: string } {
  const dir = join(root, `db${++dirs}`);
  const url = `surrealkv://${dir}`;
  const args = [child, url, String(appends), String(100_000), ...(toolBytes !== undefined ? [String(toolBytes)] : [])];
  const r = spawnSync(process.execPath, args, { encoding: "utf8", timeout: 120_000 });
  expect(r.status, r.stderr).toBe(0);
  expect(JSON.parse(r.stdout.trim().split("\n").pop()!)).toEqual({ events: appends });
  const wals = readdirSync(join(dir, "wal")).filter((n) => n.endsWith(".wal"));
  expect(wals).toHaveLength(1);
  return { dir, url, wal: join(dir, "wal", wals[0]!) };
}

/** Flips `length` bytes at `offset` of `file` (XOR 0xa5), or overwrites them with the byte `fill`. */
function damage(file: string, offset: number, length = 64, fill?: number): void {
  const buf = readFileSync(file);
  for (let i = 0; i < length; i++) buf[offset + i] = fill ?? (buf[offset + i]! ^ 0xa5) & 0xff;
  writeFileSync(file, buf);
}

async function countEvents(log: SessionLog): Promise<number> {
  let n = 0;
  for (let p = 0; p < 5; p++) n += (await log.read(formatSessionKey({ agent: "main", channel: "cli", account: "local", peer: `p${p}` }))).length;
  return n;
}

beforeAll(async () => {
  ({ child, cleanup } = await bundleFixture(join(import.meta.dirname, "fixtures/wal-child.ts"), "wal"));
});
afterAll(() => {
  cleanup();
  rmSync(root, { recursive: true, force: true });
});

describe("write-ahead log damage (surrealkv)", () => {
  it("verifies a sound WAL, fragments across 32 KiB blocks included", async () => {
    const { dir } = writtenStore(40);
    const check = await checkSurrealKvWal(dir);
    expect(check.damage).toBeUndefined();
    expect(check.tornTail).toBeUndefined();
    expect(check.records).toBeGreaterThan(40);
    const log = await createSurrealSessionLog({ url: `surrealkv://${dir}` });
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
    expect(corrupt.code).toBe("corrupt");
    expect(corrupt.file).toBe(wal);
    expect(corrupt.offset).toBeGreaterThan(0);
    expect(corrupt.offset).toBeLessThanOrEqual(Math.floor(size / 2));
    expect(corrupt.message).toContain(`${wal} at byte ${corrupt.offset}`);
    expect(corrupt.message).toMatch(/checksum mismatch/);
    expect(corrupt.message).toMatch(/exoclaw store check --accept-loss/);
    // The engine never saw the directory: the WAL is byte for byte what it was (nothing cut off).
    expect(readFileSync(wal).equals(before)).toBe(true);
    // The check itself reports where sound records resume (what a salvage could still read).
    const check = await checkSurrealKvWal(dir);
    expect(check.damage).toMatchObject({ file: wal, offset: corrupt.offset, laterFiles: [] });
    expect(check.damage!.resumesAt).toBeGreaterThan(corrupt.offset);
  });

  it("opens with acceptWalDamage: the engine drops what follows the damage", async () => {
    const { url, wal } = writtenStore(60);
    // Past the 100 KB first commit, so some commits stay before the damage.
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
    const check = await checkSurrealKvWal(dir);
    expect(check.damage).toBeUndefined();
    expect(check.tornTail).toMatchObject({ file: wal });
    const infos: string[] = [];
    const log = await createSurrealSessionLog({ url, logger: { info: (m) => infos.push(m), warn: () => {} } });
    // The torn commit is dropped; every earlier one is there.
    expect(await countEvents(log)).toBe(29);
    expect(infos.some((m) => /torn record/.test(m))).toBe(true);
    await log.close();
  });
});

describe("damage after the engine flushed its memtable (value log)", () => {
  it("a read of an event whose stored bytes were damaged fails with StoreError corrupt naming session and seq", async () => {
    // ~120 MB of commits: the engine flushes its memtable (~100 MB, measured) to sstables/ and
    // the large values to vlog/, and starts a new WAL.
    const { dir, url } = writtenStore(120, 1_000_000);
    const vlogs = readdirSync(join(dir, "vlog")).filter((n) => n.endsWith(".vlog"));
    expect(vlogs.length).toBeGreaterThan(0);
    const vlog = join(dir, "vlog", vlogs[0]!);
    // Damage that keeps the value decodable (here 64 "Z"s inside a tool input) comes back from
    // the engine as data, without an error (measured; zeros in a message's text did the same).
    // Flipped bytes made the engine fail with "Failed to deserialize record": not silent.
    damage(vlog, Math.floor(statSync(vlog).size / 2), 64, 0x5a);
    // The WAL is sound: the store opens.
    const log = await createSurrealSessionLog({ url });
    const errors: unknown[] = [];
    let events = 0;
    for (let p = 0; p < 5; p++) {
      await log.read(formatSessionKey({ agent: "main", channel: "cli", account: "local", peer: `p${p}` })).then(
        (ev) => (events += ev.length),
        (err: unknown) => errors.push(err),
      );
    }
    // Without the checksum the damaged event came back with altered bytes and no error.
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: "corrupt" });
    expect((errors[0] as Error).message).toMatch(/^session agent:main:cli:local:p\d, event \d+: the stored bytes do not match their checksum/);
    expect(events).toBeGreaterThan(0);
    await log.close();
  }, 120_000);
});

describe("WAL framing (synthetic files in SurrealKV's format)", () => {
  /** One record: CRC-32 (big-endian) over type + payload, u16 length, type, payload. */
  const record = (type: number, payload: Buffer): Buffer => {
    const head = Buffer.alloc(7);
    head.writeUInt16BE(payload.length, 4);
    head[6] = type;
    head.writeUInt32BE(crc32(Buffer.concat([head.subarray(6), payload])), 0);
    return Buffer.concat([head, payload]);
  };
  const walDir = (files: Buffer[]): string => {
    const dir = join(root, `synthetic${++dirs}`);
    mkdirSync(join(dir, "wal"), { recursive: true });
    files.forEach((b, i) => writeFileSync(join(dir, "wal", `${String(i).padStart(20, "0")}.wal`), b));
    return dir;
  };
  const p = (s: string) => Buffer.from(s);

  it("takes zeros after the last record (space never written) as a torn tail", async () => {
    const check = await checkSurrealKvWal(walDir([Buffer.concat([record(1, p("a")), record(1, p("b")), Buffer.alloc(100)])]));
    expect(check).toMatchObject({ records: 2, tornTail: { offset: 16, bytes: 100 } });
    expect(check.damage).toBeUndefined();
  });

  it("reports a bad record in a file that later files follow as damage, with those files", async () => {
    const first = Buffer.concat([record(1, p("a")), record(1, p("b"))]);
    first[10] = first[10]! ^ 1;
    const dir = walDir([first, record(1, p("c"))]);
    const check = await checkSurrealKvWal(dir);
    expect(check.damage).toMatchObject({ offset: 8, reason: "checksum mismatch", laterFiles: [join(dir, "wal", `${"1".padStart(20, "0")}.wal`)] });
  });

  it("reports fragments out of order, and a file ending inside a fragmented record before a later file", async () => {
    const stray = await checkSurrealKvWal(walDir([Buffer.concat([record(1, p("a")), record(4, p("b")), record(1, p("c"))])]));
    expect(stray.damage).toMatchObject({ offset: 8, reason: "a last fragment without its first", resumesAt: 16 });
    const cut = await checkSurrealKvWal(walDir([Buffer.concat([record(1, p("a")), record(2, p("b"))]), record(1, p("c"))]));
    expect(cut.damage).toMatchObject({ reason: "the file ends before the last fragment of its last record" });
    const tornFragments = await checkSurrealKvWal(walDir([Buffer.concat([record(1, p("a")), record(2, p("b"))])]));
    expect(tornFragments.damage).toBeUndefined();
    expect(tornFragments.tornTail).toBeDefined();
  });
});
