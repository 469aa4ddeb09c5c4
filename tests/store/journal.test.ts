/**
 * The embedded store behind exoclaw's write-ahead journal (store/journal/): the shared
 * SessionLog contract, replay of journaled records after a crash, torn tails, damage, file
 * modes, the `journal=off` switch, and kill -9 while group commits are in flight.
 */
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, appendFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createJournaledSessionLog,
  createSurrealSessionLog,
  formatSessionKey,
  JOURNAL_DIR,
  openJournalFiles,
  openSessionLog,
  StoreCorruptError,
  type SessionLogOptions,
} from "../../host/src/store/index.js";
import { frameRecord } from "../../host/src/store/journal/segments.js";
import { sessionLogSuite } from "./session-log.suite.js";
import { buildJournalChild, crashRounds } from "./journal-crash.js";

const root = mkdtempSync(join(tmpdir(), "exoclaw-journal-"));
let dirs = 0;
const freshDir = () => join(root, `db${++dirs}`);
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** The journaled log as openSessionLog builds it, with the suite's options (clock, redaction). */
async function journaled(dir: string, options: SessionLogOptions = {}) {
  const inner = await createSurrealSessionLog({ url: `surrealkv://${dir}` });
  return createJournaledSessionLog({ inner, dir: join(dir, JOURNAL_DIR), displayUrl: `surrealkv://${dir}`, ...options });
}

sessionLogSuite("surrealkv:// with the write-ahead journal", (options) => journaled(freshDir(), options));
sessionLogSuite("rocksdb:// with the write-ahead journal", async (options) => {
  const dir = freshDir();
  const inner = await createSurrealSessionLog({ url: `rocksdb://${dir}` });
  return createJournaledSessionLog({ inner, dir: join(dir, JOURNAL_DIR), displayUrl: `rocksdb://${dir}`, ...options });
});

const key = (peer: string) => formatSessionKey({ agent: "main", channel: "ws", account: "default", peer });
const message = (content: string, idempotencyKey?: string) => ({
  kind: "message_received" as const,
  data: { content, channel: "ws", account: "default", peer: "p", ...(idempotencyKey ? { idempotencyKey } : {}) },
});

describe("write-ahead journal", () => {
  it("projects a batch as one transaction: rows, seqs, reset, compaction and owed replies as appended; a session out of step writes nothing", async () => {
    const dir = freshDir();
    const inner = await createSurrealSessionLog({ url: `rocksdb://${dir}` });
    try {
      const at = 1_700_000_000_000;
      const owed = { ...message("owe me", "idem-owed"), data: { ...message("owe me", "idem-owed").data, awaitsReply: true as const } };
      await inner.projectAppends([
        {
          sessionKey: key("x"),
          events: [
            { ...message("one"), at },
            { kind: "reset", data: {}, at },
            { ...owed, at },
            { kind: "compaction", data: { summary: "s", upToSeq: 2 }, at },
          ],
          expectedSeq: 0,
          createdAt: at,
          updatedAt: at + 5,
        },
        { sessionKey: key("y"), events: [{ kind: "assistant_text", data: { text: "hi" }, at }], expectedSeq: 0, createdAt: at, updatedAt: at },
      ]);
      expect((await inner.read(key("x"))).map((e) => [e.seq, e.kind])).toEqual([
        [1, "message_received"],
        [2, "reset"],
        [3, "message_received"],
        [4, "compaction"],
      ]);
      expect(await inner.info(key("x"))).toMatchObject({ lastSeq: 4, resetSeq: 2, compaction: { seq: 4, upToSeq: 2 }, createdAt: at, updatedAt: at + 5 });
      expect((await inner.pendingReplies()).map((r) => r.data.idempotencyKey)).toEqual(["idem-owed"]);
      expect((await inner.pendingTurns()).map((m) => m.seq)).toEqual([3]);
      expect((await inner.findByIdempotencyKey("idem-owed"))?.seq).toBe(3);
      // y is at seq 1, not 0: the whole batch fails and z's event is not written either.
      await expect(
        inner.projectAppends([
          { sessionKey: key("z"), events: [{ kind: "assistant_text", data: { text: "z" }, at }], expectedSeq: 0, createdAt: at, updatedAt: at },
          { sessionKey: key("y"), events: [{ kind: "assistant_text", data: { text: "again" }, at }], expectedSeq: 0, createdAt: at, updatedAt: at },
        ]),
      ).rejects.toThrow(/exoclaw:conflict:1/);
      expect(await inner.info(key("z"))).toBeUndefined();
      expect((await inner.read(key("y"))).map((e) => e.seq)).toEqual([1]);
    } finally {
      await inner.close();
    }
  });

  it("is the default for surrealkv (0700 directory, 0600 segments); journal=off opens the engine alone", async () => {
    const dir = freshDir();
    const log = await openSessionLog({ url: `surrealkv://${dir}` });
    await log.append(key("a"), [message("hello")]);
    const jdir = join(dir, JOURNAL_DIR);
    expect(statSync(jdir).mode & 0o777).toBe(0o700);
    const segments = readdirSync(jdir);
    expect(segments.length).toBeGreaterThan(0);
    for (const s of segments) expect(statSync(join(jdir, s)).mode & 0o777).toBe(0o600);
    await log.close();

    const plain = freshDir();
    const off = await openSessionLog({ url: `surrealkv://${plain}?journal=off` });
    await off.append(key("a"), [message("hello")]);
    await off.close();
    expect(readdirSync(plain)).not.toContain(JOURNAL_DIR);
    await expect(openSessionLog({ url: `surrealkv://${plain}?journal=maybe` })).rejects.toMatchObject({ code: "invalid_argument" });
  });

  it("replays journaled records SurrealDB lacks at open, exactly once, and deletes projected segments", async () => {
    const dir = freshDir();
    const jdir = join(dir, JOURNAL_DIR);
    // Records that reached the journal but not SurrealDB (a crash before the projection): written here by hand.
    const files = await openJournalFiles({ dir: jdir });
    const rec = (body: object) => files.append(Buffer.from(JSON.stringify(body)));
    await rec({
      t: "a",
      k: key("a"),
      s: 1,
      n: 1000,
      e: [
        { ...message("first", "i1"), at: 1000 },
        { kind: "turn_started", data: { runId: "r1" }, at: 1000 },
      ],
    });
    await rec({ t: "a", k: key("b"), s: 1, n: 1001, e: [{ ...message("doomed"), at: 1001 }] });
    await rec({ t: "d", k: key("b"), n: 1002 });
    await rec({ t: "a", k: key("a"), s: 3, n: 1003, e: [{ kind: "assistant_text", data: { text: "answer" }, at: 1003 }] });
    await files.close();

    const log = await journaled(dir);
    expect((await log.read(key("a"))).map((e) => [e.seq, e.kind])).toEqual([
      [1, "message_received"],
      [2, "turn_started"],
      [3, "assistant_text"],
    ]);
    expect(await log.info(key("b"))).toBeUndefined();
    expect((await log.findByIdempotencyKey("i1"))?.seq).toBe(1);
    await expect(log.append(key("c"), [message("again", "i1")])).rejects.toMatchObject({ code: "duplicate" });
    await log.close();
    // Everything was projected: a second open replays nothing and the data is the same.
    const again = await journaled(dir);
    expect((await again.read(key("a"))).map((e) => e.seq)).toEqual([1, 2, 3]);
    expect(await again.append(key("a"), [{ kind: "turn_ended", data: { runId: "r1", stopReason: "end_turn" } }])).toEqual([4]);
    expect((await again.read(key("a"))).map((e) => e.seq)).toEqual([1, 2, 3, 4]);
    await again.close();
    // A clean close with everything projected leaves nothing to read back.
    expect(readdirSync(jdir)).toHaveLength(0);
  });

  it("frames text records into their group's write byte for byte as frameRecord, mixed with framed ones, and refuses a wrong length", async () => {
    const dir = freshDir();
    const jdir = join(dir, JOURNAL_DIR);
    const files = await openJournalFiles({ dir: jdir });
    const texts = ['{"t":"a","k":"x"}', `{"t":"a","text":"wörld 🙂 ${"é".repeat(300)}"}`, "y".repeat(70_000)];
    const raw = Buffer.from('{"t":"d","k":"z","n":1}');
    // Appended in one synchronous step: they go out in one or two group writes (the first write starts at once).
    const positions = await Promise.all([
      files.appendText(texts[0]!, Buffer.byteLength(texts[0]!)),
      files.append(raw),
      files.appendText(texts[1]!, Buffer.byteLength(texts[1]!)),
      files.appendText(texts[2]!, Buffer.byteLength(texts[2]!)),
    ]);
    expect(positions).toEqual([1, 2, 3, 4]);
    await expect(files.appendText("é", 1)).rejects.toThrow(/not its text's UTF-8 length/);
    // The wrong length failed its group and stopped the writer, as any failed write does.
    await expect(files.appendText("ok", 2)).rejects.toThrow();
    await files.close();
    const segments = readdirSync(jdir).filter((n) => n.endsWith(".jnl"));
    const bytes = Buffer.concat(segments.sort().map((n) => readFileSync(join(jdir, n))));
    const expected = Buffer.concat([frameRecord(texts[0]!), frameRecord(raw), frameRecord(texts[1]!), frameRecord(texts[2]!)]);
    expect(bytes.subarray(0, expected.length).equals(expected)).toBe(true);
    const reopened = await openJournalFiles({ dir: jdir });
    expect(reopened.recovered.map((r) => r.payload.toString("utf8"))).toEqual([texts[0], raw.toString("utf8"), texts[1], texts[2]]);
    await reopened.close();
  });

  it("refuses journal records SurrealDB cannot take in order (it lost commits), unless the loss is accepted", async () => {
    const dir = freshDir();
    const jdir = join(dir, JOURNAL_DIR);
    const files = await openJournalFiles({ dir: jdir });
    await files.append(Buffer.from(JSON.stringify({ t: "a", k: key("gap"), s: 5, n: 1, e: [{ ...message("after a hole"), at: 1 }] })));
    await files.close();
    const inner = await createSurrealSessionLog({ url: `surrealkv://${dir}` });
    await expect(createJournaledSessionLog({ inner, dir: jdir, displayUrl: dir })).rejects.toMatchObject({ code: "corrupt" });
    const warnings: string[] = [];
    const log = await createJournaledSessionLog({
      inner,
      dir: jdir,
      displayUrl: dir,
      acceptLoss: true,
      logger: { info: () => {}, warn: (m) => warnings.push(m) },
    });
    expect(warnings.join("\n")).toMatch(/SurrealDB ends at seq 0 .*dropping/);
    expect(await log.info(key("gap"))).toBeUndefined();
    expect(await log.append(key("gap"), [message("new")])).toEqual([1]);
    await log.close();
  });

  it("writes later segments into a zero-filled spare; zeros after the last record read as a clean end, garbage there as a torn tail", async () => {
    const dir = freshDir();
    const jdir = join(dir, JOURNAL_DIR);
    const SEGMENT = 4096;
    const files = await openJournalFiles({ dir: jdir, segmentBytes: SEGMENT });
    const payload = (i: number) => Buffer.from(JSON.stringify({ t: "d", k: key(`s${i}`), n: i, pad: "x".repeat(150) }));
    const spare = join(jdir, "spare.jnl.tmp");
    let i = 0;
    // The spare is prepared aside, in the background, once the first segment (written by
    // appending) is a quarter full; once it is ready, the next write goes into it.
    await files.append(payload(++i));
    for (let t = 0; t < 200 && readdirSync(jdir).filter((n) => n.endsWith(".jnl")).length < 2; t++) {
      await new Promise((r) => setTimeout(r, 10));
      await files.append(payload(++i));
    }
    await files.append(payload(++i));
    const second = readdirSync(jdir)
      .filter((n) => n.endsWith(".jnl"))
      .sort()[1]!;
    // The spare became the second segment: its file is the segment's size although it holds less.
    expect(statSync(join(jdir, second)).size).toBe(SEGMENT);
    const written = i;

    // A crash now (a copy of the files as they are): every record back, no torn tail reported.
    const crashed = join(freshDir(), JOURNAL_DIR);
    cpSync(jdir, crashed, { recursive: true });
    const infos: string[] = [];
    const reopened = await openJournalFiles({ dir: crashed, segmentBytes: SEGMENT, logger: { info: (m) => infos.push(m) } });
    expect(reopened.recovered.map((r) => r.position)).toEqual(Array.from({ length: written }, (_, k) => k + 1));
    expect(reopened.recovered.map((r) => r.payload.toString())).toEqual(Array.from({ length: written }, (_, k) => payload(k + 1).toString()));
    expect(infos).toEqual([]);
    await reopened.close();

    // A write cut short inside the zeros: a torn tail, cut; the acknowledged records stay.
    const torn = join(freshDir(), JOURNAL_DIR);
    cpSync(jdir, torn, { recursive: true });
    const tornFile = join(torn, second);
    const bytes = readFileSync(tornFile);
    let end = 0;
    while (bytes.readUInt32LE(end) !== 0) end += 8 + bytes.readUInt32LE(end);
    bytes.write("garbage", end + 3);
    writeFileSync(tornFile, bytes);
    const tornInfos: string[] = [];
    const afterTorn = await openJournalFiles({ dir: torn, segmentBytes: SEGMENT, logger: { info: (m) => tornInfos.push(m) } });
    expect(afterTorn.recovered.length).toBe(written);
    expect(tornInfos.join("\n")).toMatch(/torn record/);
    expect(statSync(tornFile).size).toBe(end);
    await afterTorn.close();

    // A clean close cuts the zeros and removes the spare.
    await files.close();
    expect(existsSync(spare)).toBe(false);
    expect(statSync(join(jdir, second)).size).toBeLessThan(SEGMENT);
    const clean = await openJournalFiles({ dir: jdir, segmentBytes: SEGMENT });
    expect(clean.recovered.length).toBe(written);
    await clean.close();
  });

  it("cuts a torn tail at open (a write cut short, never acknowledged) and refuses damage in an older segment", async () => {
    const dir = freshDir();
    const jdir = join(dir, JOURNAL_DIR);
    const files = await openJournalFiles({ dir: jdir, segmentBytes: 1 });
    await files.append(Buffer.from(JSON.stringify({ t: "a", k: key("a"), s: 1, n: 1, e: [{ ...message("kept"), at: 1 }] })));
    await files.close();
    const [segment] = readdirSync(jdir);
    // Half a frame header and garbage: what a crash mid-write leaves.
    appendFileSync(join(jdir, segment!), Buffer.from([0x20, 0, 0, 0, 1, 2]));
    const infos: string[] = [];
    const inner = await createSurrealSessionLog({ url: `surrealkv://${dir}` });
    const log = await createJournaledSessionLog({ inner, dir: jdir, displayUrl: dir, logger: { info: (m) => infos.push(m), warn: () => {} } });
    expect((await log.read(key("a"))).map((e) => e.seq)).toEqual([1]);
    expect(infos.some((m) => /torn record/.test(m))).toBe(true);
    await log.close();

    // Two segments, the first damaged in the middle: nothing opens.
    const bad = join(freshDir(), JOURNAL_DIR);
    const f2 = await openJournalFiles({ dir: bad, segmentBytes: 1 });
    for (let i = 0; i < 3; i++) await f2.append(Buffer.from(JSON.stringify({ t: "d", k: key(`x${i}`), n: i })));
    await f2.close();
    const first = readdirSync(bad).sort()[0]!;
    const bytes = readFileSync(join(bad, first));
    bytes[10] = bytes[10]! ^ 0xff;
    writeFileSync(join(bad, first), bytes);
    await expect(openJournalFiles({ dir: bad })).rejects.toBeInstanceOf(StoreCorruptError);
  });
});

describe("write-ahead journal: sessions that never existed", () => {
  it("answers a new session's head and history without SurrealDB, and still reads a stored one after reopening", async () => {
    const dir = freshDir();
    const url = `rocksdb://${dir}`;
    /** The real engine's log, counting the per-session reads the journal makes of it. */
    const counted = async () => {
      const inner = await createSurrealSessionLog({ url });
      const calls: string[] = [];
      let scanned!: () => void;
      const scan = new Promise<void>((resolve) => (scanned = resolve));
      const proxy = new Proxy(inner, {
        get(target, prop, receiver) {
          const v = Reflect.get(target, prop, receiver);
          if (typeof v !== "function") return v;
          if (prop === "info" || prop === "read" || prop === "readHistory")
            return (...args: unknown[]) => {
              calls.push(`${String(prop)} ${String(args[0]).split(":").pop()}`);
              return v.apply(target, args);
            };
          if (prop === "scanSessionKeys") return (...args: unknown[]) => (v.apply(target, args) as Promise<void>).finally(scanned);
          return v.bind(target);
        },
      });
      const log = await createJournaledSessionLog({ inner: proxy, dir: join(dir, JOURNAL_DIR), displayUrl: url });
      // (Bounded: a journal that does not scan the sessions is measured by the calls below.)
      await Promise.race([scan, new Promise((resolve) => setTimeout(resolve, 3_000))]);
      // The journal marks the filter ready in a reaction after the scan's promise.
      await new Promise((resolve) => setImmediate(resolve));
      return { log, calls };
    };

    const first = await counted();
    // A turn of a new session: history read while its message is written, then the outcome.
    const [, history] = await Promise.all([first.log.append(key("new"), [message("hello")]), first.log.readHistory(key("new"))]);
    expect(history).toEqual([]);
    expect(await first.log.append(key("new"), [{ kind: "assistant_text", data: { text: "hi" } }])).toEqual([2]);
    expect(await first.log.read(key("never"))).toEqual([]);
    expect(await first.log.readHistory(key("never"))).toEqual([]);
    // Answered without SurrealDB, but bad arguments still fail as SurrealDB's log refuses them.
    await expect(first.log.read("not-a-key")).rejects.toMatchObject({ code: "invalid_argument" });
    await expect(first.log.readHistory("not-a-key")).rejects.toMatchObject({ code: "invalid_argument" });
    await expect(first.log.read(key("never"), { afterSeq: -1 })).rejects.toMatchObject({ code: "invalid_argument" });
    await expect(first.log.read(key("never"), { limit: -2 })).rejects.toMatchObject({ code: "invalid_argument" });
    expect(first.calls).toEqual([]);
    // Once journaled, a session's reads go to SurrealDB (after its projection).
    expect((await first.log.readHistory(key("new"))).map((e) => e.seq)).toEqual([1, 2]);
    expect(first.calls).toEqual(["readHistory new"]);
    await first.log.close();

    // Reopened: the stored session is in the filter (the scan at open), so it is looked up.
    const second = await counted();
    expect(await second.log.append(key("new"), [message("again")])).toEqual([3]);
    expect((await second.log.read(key("new"))).map((e) => e.seq)).toEqual([1, 2, 3]);
    expect(second.calls).toEqual(["info new", "read new"]);
    expect(await second.log.readHistory(key("other"))).toEqual([]);
    expect(second.calls).toHaveLength(2);
    // A deleted session is empty, known in process; appends start again at 1.
    expect(await second.log.delete(key("new"))).toBe(true);
    expect(await second.log.readHistory(key("new"))).toEqual([]);
    expect(await second.log.append(key("new"), [message("fresh")])).toEqual([1]);
    expect(second.calls).toHaveLength(2);
    await second.log.close();
  });
});

describe("write-ahead journal: backlog and replies", () => {
  it("makes appends wait while the unprojected backlog is over its bound, and loses none", async () => {
    const dir = freshDir();
    const inner = await createSurrealSessionLog({ url: `surrealkv://${dir}` });
    const log = await createJournaledSessionLog({ inner, dir: join(dir, JOURNAL_DIR), displayUrl: dir, maxBacklogEvents: 5, projectBatchEvents: 3 });
    const seqs = await Promise.all(
      Array.from({ length: 8 }, (_, s) => Promise.all(Array.from({ length: 5 }, (_, i) => log.append(key(`b${s}`), [message(`m${i}`)])))),
    );
    expect(seqs.map((per) => per.flat())).toEqual(Array.from({ length: 8 }, () => [1, 2, 3, 4, 5]));
    expect(await log.countSessions()).toBe(8);
    for (let s = 0; s < 8; s++) expect((await log.read(key(`b${s}`))).map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
    await log.close();
  });

  it("settles a reply whose message is still unprojected once it is projected, and replays an unprojected backlog after close", async () => {
    const dir = freshDir();
    const inner = await createSurrealSessionLog({ url: `surrealkv://${dir}` });
    const log = await createJournaledSessionLog({ inner, dir: join(dir, JOURNAL_DIR), displayUrl: dir });
    const owed = (k: string) => ({
      kind: "message_received" as const,
      data: { content: k, channel: "ws", account: "default", peer: "p", idempotencyKey: k, awaitsReply: true as const },
    });
    await Promise.all(Array.from({ length: 20 }, (_, i) => log.append(key(`o${i}`), [owed(`o${i}`)])));
    await log.settleReplies(["o0", "o1", "o2"]);
    expect((await log.pendingReplies()).map((e) => e.data.idempotencyKey).sort()).toEqual(Array.from({ length: 17 }, (_, i) => `o${i + 3}`).sort());
    // Closed with a backlog (not drained): the next open projects it.
    await Promise.all(Array.from({ length: 20 }, (_, i) => log.append(key(`o${i}`), [{ kind: "assistant_text", data: { text: "later" } }])));
    await log.close();
    const again = await journaled(dir);
    for (let i = 0; i < 20; i++) expect((await again.read(key(`o${i}`))).map((e) => e.seq)).toEqual([1, 2]);
    await expect(again.append(key("x"), [owed("o5")])).rejects.toMatchObject({ code: "duplicate" });
    expect((await again.pendingReplies()).length).toBe(17);
    await again.close();
  });
});

describe("write-ahead journal: retention", () => {
  it("prune waits for the projection and leaves no journal record of a removed session to replay", async () => {
    const dir = freshDir();
    let clock = 1_000_000;
    const log = await journaled(dir, { now: () => clock });
    await log.append(key("old"), [message("old news")]);
    await log.append(key("old"), [{ kind: "error", data: { code: -32000, message: "failed" } }]);
    clock += 10_000;
    await log.append(key("new"), [message("fresh")]);
    const removed: string[] = [];
    expect(await log.prune({ idleBeforeMs: clock - 1, onRemoved: (k) => removed.push(k) })).toMatchObject({ sessions: 1 });
    expect(removed).toEqual([key("old")]);
    const jdir = join(dir, JOURNAL_DIR);
    expect(readdirSync(jdir).reduce((n, f) => n + statSync(join(jdir, f)).size, 0)).toBe(0);
    // The pruned session starts again from seq 1.
    expect(await log.append(key("old"), [message("again")])).toEqual([1]);
    await log.close();
  });
});

describe("kill -9 while group commits are in flight (50 sessions appending)", () => {
  let child: string;
  let cleanup = () => {};
  beforeAll(async () => {
    ({ child, cleanup } = await buildJournalChild());
  });
  afterAll(() => cleanup());

  it.each(["rocksdb", "surrealkv"])(
    "on %s: keeps every acknowledged append after restart, none twice, and opens cleanly",
    async (engine) => {
      const acked = await crashRounds(child, `${engine}://${freshDir()}`, 2, 400);
      expect(acked).toBeGreaterThanOrEqual(800);
    },
    120_000,
  );
});

describe("write-ahead journal: shared event objects", () => {
  it("under the tests, the events an append returns (shared with the projector's queue) are frozen: a caller that modifies one throws", async () => {
    // vitest.config.ts sets EXOCLAW_FREEZE_SHARED_EVENTS=1; production does not freeze (freeze.ts).
    expect(process.env.EXOCLAW_FREEZE_SHARED_EVENTS).toBe("1");
    const dir = freshDir();
    const log = await journaled(dir);
    try {
      const [stored] = await log.appendEvents(key("frozen"), [message("do not touch", "idem-frozen")]);
      const data = stored!.data as { content: string };
      expect(() => {
        data.content = "touched";
      }).toThrow(TypeError);
      // What is projected is what was appended.
      expect((await log.read(key("frozen")))[0]!.data).toMatchObject({ content: "do not touch" });
    } finally {
      await log.close();
    }
  });
});
