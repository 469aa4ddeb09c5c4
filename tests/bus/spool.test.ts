import { appendFile, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { RecordLog } from "../../host/src/bus/record-log.js";
import { Spool, type SpoolRecord } from "../../host/src/bus/spool.js";

const dirs: string[] = [];
async function dir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), "exoclaw-spool-"));
  dirs.push(d);
  return d;
}
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

const rec = (n: number): SpoolRecord => ({
  subject: "exoclaw.in.c.a.p",
  msgId: `m${n}`,
  headers: { "X-N": String(n) },
  payload: new Uint8Array([n & 255, 1, 2]),
  at: 1_700_000_000_000 + n,
});

describe("record log", () => {
  it("group-commits appends and cuts a torn or corrupt tail on open", async () => {
    const path = join(await dir(), "log");
    const { log } = await RecordLog.open(path);
    const ends = await Promise.all(Array.from({ length: 50 }, (_, i) => log.append({ i })));
    expect(ends).toEqual([...ends].sort((a, b) => a - b));
    await log.close();
    const full = (await stat(path)).size;
    // a crash in the middle of the last write: half a frame
    await appendFile(path, Buffer.from([0, 0, 0, 20, 1, 2, 3]));
    let reopened = await RecordLog.open(path);
    expect(reopened.records.map((r) => (r.value as { i: number }).i)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect((await stat(path)).size).toBe(full);
    await reopened.log.close();
    // a flipped byte inside the last record: CRC mismatch, that record and everything after it go
    const bytes = await readFile(path);
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0xff;
    await writeFile(path, bytes);
    reopened = await RecordLog.open(path);
    expect(reopened.records).toHaveLength(49);
    await reopened.log.close();
  });
});

describe("spool", () => {
  it("drains in order, survives a reopen mid-drain, and empties itself", async () => {
    const d = await dir();
    let spool = await Spool.open(d);
    await Promise.all(Array.from({ length: 10 }, (_, i) => spool.append(rec(i))));
    expect(spool.pending).toBe(10);
    // the first drain fails after 4 records (NATS went away again)
    const sent: string[] = [];
    let budget = 4;
    expect(
      await spool.drain(async (r) => {
        if (budget-- <= 0) throw new Error("down");
        sent.push(r.msgId);
      }),
    ).toBe(false);
    expect(spool.pending).toBe(6);
    await spool.close();
    // a new process picks up at the cursor
    spool = await Spool.open(d);
    expect(spool.pending).toBe(6);
    await spool.append(rec(10));
    expect(await spool.drain(async (r) => void sent.push(r.msgId))).toBe(true);
    expect(sent).toEqual(Array.from({ length: 11 }, (_, i) => `m${i}`));
    expect(spool.pending).toBe(0);
    expect((await stat(join(d, "spool.log"))).size).toBe(0);
    await spool.close();
  });

  it("keeps records byte-exact and resends everything when the cursor is not trustworthy", async () => {
    const d = await dir();
    const spool = await Spool.open(d);
    await spool.append(rec(1));
    await spool.append(rec(2));
    await spool.close();
    await writeFile(join(d, "cursor"), "7"); // not a frame boundary
    const again = await Spool.open(d);
    const got: SpoolRecord[] = [];
    expect(await again.drain(async (r) => void got.push(r))).toBe(true);
    expect(got.map((r) => r.msgId)).toEqual(["m1", "m2"]);
    expect([...got[0]!.payload]).toEqual([1, 1, 2]);
    expect(got[1]!.headers).toEqual({ "X-N": "2" });
    await again.close();
  });
});
