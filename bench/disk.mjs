#!/usr/bin/env node
// `npm run bench:disk`: where the embedded SurrealDB store's disk goes, per 1,000 short turns.
// A child process appends what the gateway journals for a turn (the bench's short turns: a
// ~100-character message + turn_started in one commit, then assistant_text, usage, turn_ended in
// a second, 20 turns per session), from `--parallel` sessions at once, then exits (the engine
// keeps its datastore open until the process ends). The parent then sums the files of the
// surrealkv directory per component (wal/, sstables/, vlog/, ...), once right after the run and
// once after reopening the store in a second child (what a restarted gateway finds). Figures are
// bytes on disk (file sizes), not allocated blocks. `--keys` adds the WAL by key family;
// `--prune` prunes every session at the reopen (what removal writes before compaction).
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { build } from "esbuild";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const { values: opts } = parseArgs({
  options: {
    turns: { type: "string", default: "1000" },
    parallel: { type: "string", default: "1" },
    child: { type: "string" },
    dir: { type: "string" },
    bundle: { type: "string" },
    keep: { type: "boolean", default: false },
    files: { type: "boolean", default: false },
    keys: { type: "boolean", default: false },
    prune: { type: "boolean", default: false },
  },
});
const TURNS = Number(opts.turns);
const PARALLEL = Number(opts.parallel);

/** A message of ~100 characters and its echo, as in bench/persistence.mjs. */
const message = (i) => `message ${i}: tell me something about the weather in a city of your choice, in one sentence`;

/** Child: append `TURNS` turns to the store at `dir` (or just open and close it: `reopen`). */
async function child(mode, dir, bundle) {
  const store = await import(pathToFileURL(bundle).href);
  // Reopening a large WAL replays it all (slow on a loaded machine).
  const log = await store.createSurrealSessionLog({ url: `surrealkv://${dir}`, connectTimeoutMs: 600_000 });
  if (mode === "write") {
    let next = 0;
    const worker = async (w) => {
      for (let i = next++; i < TURNS; i = next++) {
        const key = store.formatSessionKey({ agent: "main", channel: "ws", account: "default", peer: `p${w}-${Math.floor(i / 20)}` });
        const runId = `run-${i}-0123456789abcdef`;
        await log.append(key, [
          {
            kind: "message_received",
            runId,
            data: { content: message(i), channel: "ws", account: "default", peer: `p${w}`, idempotencyKey: `idem-${i}-0123456789` },
          },
          { kind: "turn_started", runId, data: { runId } },
        ]);
        await log.append(key, [
          { kind: "assistant_text", runId, data: { text: `You said: ${message(i)}` } },
          { kind: "usage", runId, data: { inputTokens: 25, outputTokens: 30 } },
          { kind: "turn_ended", runId, data: { runId, stopReason: "end_turn" } },
        ]);
      }
    };
    await Promise.all(Array.from({ length: PARALLEL }, (_, w) => worker(w)));
  }
  if (mode === "prune") {
    const r = await log.prune({ idleBeforeMs: Date.now() + 1 });
    console.log(`pruned every session: ${JSON.stringify(r)}`);
  }
  await log.close();
  process.exit(0);
}

/** Bytes per top-level entry of `dir` (directories summed), and the file list. */
function breakdown(dir) {
  const parts = {};
  const files = [];
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else {
        const size = statSync(p).size;
        const top = relative(dir, p).split("/")[0];
        parts[top] = (parts[top] ?? 0) + size;
        files.push([relative(dir, p), size]);
      }
    }
  };
  walk(dir);
  return { parts, files, total: Object.values(parts).reduce((a, b) => a + b, 0) };
}

/**
 * WAL bytes by key family: SurrealKV's WAL is the LevelDB log format (32 KiB blocks, 7-byte
 * record headers; see host/src/store/surreal/wal-check.ts); each commit's batch holds SurrealDB
 * keys (`/*<ns>*<db>*<table>\0` then `*` for a record, `+<index>!xx` for index keys, SurrealDB
 * `surrealdb/core/src/key/`). The bytes from one key's start to the next key's start (its value,
 * version and entry header included) are counted to the key's family.
 */
function walFamilies(dir) {
  const families = {};
  const walDir = join(dir, "wal");
  let total = 0;
  for (const f of readdirSync(walDir).sort()) {
    const buf = readFileSync(join(walDir, f));
    const payloads = [];
    let cur = [];
    for (let off = 0; off + 7 <= buf.length; ) {
      const left = 32 * 1024 - (off % (32 * 1024));
      const len = buf.readUInt16BE(off + 4);
      const type = buf[off + 6];
      if (left < 7 || type === 0) {
        off += left < 7 ? left : left;
        continue;
      }
      cur.push(buf.subarray(off + 7, off + 7 + len));
      if (type === 1 || type === 4) {
        payloads.push(Buffer.concat(cur));
        cur = [];
      }
      total += 7;
      off += 7 + len;
    }
    const keyStart = /\/\*\x00\x00\x00\x01\*|\/!/g;
    const family = /^\/\*\x00\x00\x00\x01\*\x00\x00\x00\x00\*(\w+)\x00(?:(\*)|\+\x00\x00\x00(.)(?:!(..))?)/s;
    for (const p of payloads) {
      const text = p.toString("latin1");
      const starts = [...text.matchAll(keyStart)].map((m) => m.index);
      total += p.length;
      const add = (k, n) => (families[k] = (families[k] ?? 0) + n);
      add("(batch headers)", starts.length > 0 ? starts[0] : p.length);
      starts.forEach((s, i) => {
        const seg = text.slice(s, starts[i + 1] ?? text.length);
        const m = family.exec(seg);
        const name = !m
          ? "(catalog, sequences)"
          : m[2]
            ? `${m[1]} rows`
            : m[4]
              ? `${m[1]} index ${m[3].charCodeAt(0)} !${m[4]}`
              : `${m[1]} index ${m[3].charCodeAt(0)}`;
        add(name, seg.length);
      });
    }
  }
  return { families, total };
}

function runChild(mode, dir, bundle) {
  return new Promise((resolve, reject) => {
    const p = spawn(
      process.execPath,
      [fileURLToPath(import.meta.url), "--child", mode, "--dir", dir, "--bundle", bundle, "--turns", String(TURNS), "--parallel", String(PARALLEL)],
      {
        stdio: ["ignore", "inherit", "inherit"],
      },
    );
    p.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`${mode} child exited with ${code}`))));
  });
}

async function main() {
  if (opts.child) return child(opts.child, opts.dir, opts.bundle);
  const work = mkdtempSync(join(tmpdir(), "exoclaw-bench-disk-"));
  // Next to node_modules, so the bundle's external packages resolve.
  const bundleDir = join(ROOT, `.exoclaw-test-bench-${process.pid}`);
  const bundle = join(bundleDir, "store.mjs");
  await build({
    entryPoints: [join(ROOT, "host/src/store/index.ts")],
    outfile: bundle,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    logLevel: "error",
    external: ["surrealdb", "@surrealdb/node", "@nats-io/*", "pino", "pino-*"],
  });
  const dir = join(work, "data");
  try {
    const t0 = performance.now();
    await runChild("write", dir, bundle);
    const ms = performance.now() - t0;
    const after = breakdown(dir);
    const per1k = (b) => ((b / TURNS) * 1000) / 1e6;
    if (opts.keys) {
      const { families, total } = walFamilies(dir);
      console.log(`WAL by key family (MB per 1,000 turns, share of ${per1k(total).toFixed(2)} MB):`);
      for (const [k, v] of Object.entries(families).sort((a, b) => b[1] - a[1])) {
        if (v / total >= 0.002) console.log(`  ${per1k(v).toFixed(3).padStart(7)}  ${((v * 100) / total).toFixed(1).padStart(5)} %  ${k}`);
      }
    }
    // --prune: the reopen also prunes every session (what deleting costs before compaction).
    await runChild(opts.prune ? "prune" : "reopen", dir, bundle);
    const reopened = breakdown(dir);
    const names = [...new Set([...Object.keys(after.parts), ...Object.keys(reopened.parts)])].sort();
    console.log(`disk of the surrealkv store: ${TURNS} short turns (5 events), ${PARALLEL} session(s) at a time, ${(ms / 1000).toFixed(1)} s`);
    console.log(`component        after run MB/1k turns   after reopen${opts.prune ? " + prune" : ""} MB/1k turns`);
    for (const n of [...names, "total"]) {
      const a = n === "total" ? after.total : (after.parts[n] ?? 0);
      const r = n === "total" ? reopened.total : (reopened.parts[n] ?? 0);
      console.log(`${n.padEnd(16)} ${per1k(a).toFixed(3).padStart(10)}              ${per1k(r).toFixed(3).padStart(10)}`);
    }
    if (opts.files) for (const [f, s] of reopened.files) console.log(`  ${f}  ${s}`);
  } finally {
    if (opts.keep) console.log(`kept ${dir}`);
    else rmSync(work, { recursive: true, force: true });
    rmSync(bundleDir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`bench failed: ${err.stack ?? err}\n`);
  process.exit(1);
});
