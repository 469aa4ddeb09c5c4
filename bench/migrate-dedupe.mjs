#!/usr/bin/env node
// `node bench/migrate-dedupe.mjs [ROOT ...] [--sessions 10000] [--turns 2] [--rounds 3] [--engine rocksdb|surrealkv] [--child-cache 4mib]`
// (`--child-cache`: the opens' SURREAL_ROCKSDB_BLOCK_CACHE_SIZE, to see the copy without the cache filling)
//
// Migration 8 (the dedupe keys copied from the event rows into the `dedupe` table) on a store
// written as exoclaw wrote it before: peak RSS and time of the first open after the upgrade.
//
// One store is built once at migration 7 (migrations 1-7 applied as `migrate` applies them, then
// `--sessions` sessions x `--turns` turns of the bench's 5 events through the journal's
// projection statement as it was before migration 8 (tests/store/fixtures/projection-before.ts
// without its dedupe insert); every turn's message carries both keys, a platform message id and
// an idempotency key: 10,000 x 2 -> 100,000 events, 40,000 keys). Each
// ROOT (default: this checkout) is a checkout whose host/src/store is bundled; each round copies
// the pristine store once per root and opens the copy in a fresh child process with that root's
// `createSurrealSessionLog`, roots alternating. The child reports its VmRSS before the open, its
// VmHWM (peak RSS) after it, the open's wall time, and whether the first and last keys are found.
import { spawn } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { importSource } from "./lib.mjs";

const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    sessions: { type: "string", default: "10000" },
    turns: { type: "string", default: "2" },
    rounds: { type: "string", default: "3" },
    engine: { type: "string", default: "rocksdb" },
    child: { type: "string" },
    dir: { type: "string" },
    last: { type: "string" },
    "child-cache": { type: "string" },
  },
});

/** VmRSS and VmHWM of this process, MB. */
function memory() {
  const status = readFileSync("/proc/self/status", "utf8");
  const kb = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? 0);
  return { rss: kb("VmRSS") / 1024, hwm: kb("VmHWM") / 1024 };
}

if (opts.child !== undefined) {
  // Child: the bundle is built by the parent (dist/bench-migrate-<i>.mjs).
  const store = await import(opts.child);
  const url = `${opts.engine}://${opts.dir}`;
  // Load the SDK and the native binding first, so that "before" holds them.
  const warm = await store.createSurrealSessionLog({ url: "mem://" });
  await warm.close();
  const before = memory();
  const t0 = performance.now();
  const log = await store.createSurrealSessionLog({ url, connectTimeoutMs: 600_000 });
  const openMs = performance.now() - t0;
  const after = memory();
  // The first and the last key written are found (the copy reached the end of the store;
  // `keysFound: false` is a broken build).
  const found = (await log.findByIdempotencyKey("k1")) !== undefined && (await log.findByIdempotencyKey(opts.last)) !== undefined;
  await log.close();
  console.log(
    JSON.stringify({
      keysFound: found,
      openMs: Math.round(openMs),
      rssBeforeMb: Math.round(before.rss),
      peakMb: Math.round(after.hwm),
      rssAfterMb: Math.round(after.rss),
    }),
  );
  process.exit(0);
}

const roots = (positionals.length > 0 ? positionals : [join(import.meta.dirname, "..")]).map((r) => resolve(r));
const SESSIONS = Number(opts.sessions);
const TURNS = Number(opts.turns);
const tmp = mkdtempSync(join(tmpdir(), "exoclaw-migrate-dedupe-"));

// ---- the store at migration 7 (this checkout's statements) -----------------------------------
const here = await importSource("host/src/store/index.ts", "migrate-build");
// The projection statement as it was at migration 8's introduction (main at 1b390f3, kept verbatim
// for the tests); without its dedupe insert it is what exoclaw wrote before migration 8.
const before = await importSource("tests/store/fixtures/projection-before.ts", "migrate-statements");
const { MIGRATIONS } = await importSource("host/src/store/migrations/index.ts", "migrate-migrations");
const engineMod = await importSource("host/src/store/surreal/engine.ts", "migrate-engine");
const pristine = join(tmp, "pristine");
{
  const sdk = await engineMod.loadSdk();
  const url = `${opts.engine}://${pristine}`;
  const target = { engine: opts.engine, url, displayUrl: url, namespace: "exoclaw", database: "sessions" };
  const engine = engineMod.embeddedEngineFactory(
    sdk,
    () => engineMod.acquireEmbedded(target),
    (err) => {
      throw err;
    },
  );
  const db = new sdk.Surreal({ engines: { [opts.engine]: engine } });
  await db.connect(url, { namespace: target.namespace, database: target.database });
  await db
    .query(`DEFINE TABLE IF NOT EXISTS migration SCHEMAFULL;
DEFINE FIELD IF NOT EXISTS name ON migration TYPE string;
DEFINE FIELD IF NOT EXISTS applied_at ON migration TYPE int;`)
    .collect();
  for (const m of MIGRATIONS.filter((m) => m.version <= 7)) {
    await db
      .query(`BEGIN TRANSACTION;\n${m.sql}\nCREATE type::record('migration', $version) CONTENT { name: $name, applied_at: 0 };\nCOMMIT TRANSACTION;`, {
        version: m.version,
        name: m.name,
      })
      .collect();
  }
  const DEDUPE_INSERT = "INSERT INTO dedupe $dedupe RETURN NONE;\n";
  if (!before.PROJECT_SQL_BEFORE.includes(DEDUPE_INSERT)) throw new Error("PROJECT_SQL_BEFORE changed: update the old statement here");
  const OLD_PROJECT_SQL = before.PROJECT_SQL_BEFORE.replace(DEDUPE_INSERT, "");
  const at = 1_700_000_000_000;
  let n = 0;
  const t0 = performance.now();
  for (let t = 0; t < TURNS; t++) {
    for (let s0 = 0; s0 < SESSIONS; s0 += 250) {
      const items = [];
      for (let s = s0; s < Math.min(SESSIONS, s0 + 250); s++) {
        const run = `r${++n}`;
        items.push({
          sessionKey: here.formatSessionKey({ agent: "main", channel: "telegram", account: "bot1", peer: `user${s}` }),
          expectedSeq: t * 5,
          createdAt: at,
          updatedAt: at,
          events: [
            {
              kind: "message_received",
              at,
              data: {
                content: `message ${n}: the weather`,
                channel: "telegram",
                account: "bot1",
                peer: `user${s}`,
                platformMessageId: `pm${n}`,
                idempotencyKey: `k${n}`,
              },
            },
            { kind: "turn_started", at, runId: run, data: { runId: run } },
            { kind: "assistant_text", at, runId: run, data: { text: `the weather in Lisbon is sunny with a light breeze, turn ${n}` } },
            { kind: "usage", at, runId: run, data: { inputTokens: 120, outputTokens: 30 } },
            { kind: "turn_ended", at, runId: run, data: { runId: run, stopReason: "end_turn" } },
          ],
        });
      }
      const { dedupe: _none, ...vars } = before.projectionVarsBefore(items);
      await db.query(OLD_PROJECT_SQL, vars).collect();
    }
  }
  await db.close();
  console.error(`store: ${SESSIONS * TURNS * 5} events, ${SESSIONS * TURNS * 2} keys, written in ${Math.round(performance.now() - t0)} ms`);
}
// The engine keeps a datastore open until the process ends: copies are opened by children.

// ---- the opens ---------------------------------------------------------------------------------
const bundles = [];
for (const [i, root] of roots.entries()) {
  await importSource("host/src/store/index.ts", `migrate-${i}`, { root });
  bundles.push(join(import.meta.dirname, "..", "dist", `bench-migrate-${i}.mjs`));
}
const runChild = (bundle, dir) =>
  new Promise((resolveRun, reject) => {
    const p = spawn(process.execPath, [import.meta.filename, "--child", bundle, "--dir", dir, "--engine", opts.engine, "--last", `k${SESSIONS * TURNS}`], {
      stdio: ["ignore", "pipe", "inherit"],
      env: opts["child-cache"] !== undefined ? { ...process.env, SURREAL_ROCKSDB_BLOCK_CACHE_SIZE: opts["child-cache"] } : process.env,
    });
    let out = "";
    p.stdout.on("data", (d) => {
      out += d;
    });
    p.on("exit", (code) => (code === 0 ? resolveRun(JSON.parse(out.trim().split("\n").pop())) : reject(new Error(`child exited ${code}`))));
  });
const results = roots.map(() => []);
for (let r = 0; r < Number(opts.rounds); r++) {
  const order = r % 2 === 0 ? [...roots.keys()] : [...roots.keys()].reverse();
  for (const i of order) {
    const dir = join(tmp, `copy-${r}-${i}`);
    cpSync(pristine, dir, { recursive: true });
    const res = await runChild(bundles[i], dir);
    res.load = readFileSync("/proc/loadavg", "utf8").split(" ")[0];
    results[i].push(res);
    console.log(JSON.stringify({ round: r, root: roots[i], ...res }));
    rmSync(dir, { recursive: true, force: true });
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
for (const [i, root] of roots.entries()) {
  const rs = results[i];
  console.log(
    JSON.stringify({
      root,
      medianOpenMs: median(rs.map((x) => x.openMs)),
      medianPeakMb: median(rs.map((x) => x.peakMb)),
      medianPeakOverBeforeMb: median(rs.map((x) => x.peakMb - x.rssBeforeMb)),
    }),
  );
}
rmSync(tmp, { recursive: true, force: true });
