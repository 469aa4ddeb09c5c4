#!/usr/bin/env node
// `node bench/engine-rows.mjs [ROOT ...] [--batches 120] [--sessions 50] [--turns 2] [--keys none|idem|channel] [--engine rocksdb|surrealkv]`
//
// The embedded SurrealDB engine's CPU per projected event, store alone: the journal's projection
// (`projectAppends`) of batches of S sessions x T turns of 5 events (message_received,
// turn_started, assistant_text, usage, turn_ended: what a gateway turn writes), on fresh stores.
// `--keys`: the turn's message carries no dedupe key (a WebSocket chat.send without
// idempotencyKey), an idempotencyKey, or a channel message's two (platform message id and
// idempotency key).
//
// Each ROOT (default: this checkout) is a checkout whose host/src/store is bundled and opened on
// its own store directory in this one process; their batches alternate (A, B, A, B, …), and the
// CPU the engine's threads used during each batch is charged to its root, read from
// /proc/self/task/*/stat: the engine's executor threads (`tokio-runtime-w*`) and RocksDB's own
// threads (`rocksdb:*`), the main thread apart. Interleaving in one process makes two builds see
// the same machine load, which on a shared machine swings more between runs than the difference
// measured. Ticks are 10 ms, so each figure is a sum over many batches.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { importSource } from "./lib.mjs";

const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    batches: { type: "string", default: "120" },
    sessions: { type: "string", default: "50" },
    turns: { type: "string", default: "2" },
    keys: { type: "string", default: "none" },
    engine: { type: "string", default: "rocksdb" },
  },
});
const roots = (positionals.length > 0 ? positionals : [join(import.meta.dirname, "..")]).map((r) => resolve(r));
const BATCHES = Number(opts.batches);
const SESSIONS = Number(opts.sessions);
const TURNS = Number(opts.turns);

const tmp = mkdtempSync(join(tmpdir(), "exoclaw-engine-rows-"));

/** Bundles `root`'s store (into this checkout's dist/, so its npm packages resolve from here) and imports it. */
const loadStore = (root, i) => importSource("host/src/store/index.ts", `engine-rows-${i}`, { root });

/** CPU ms so far of this process's threads: engine executors, RocksDB's threads, the main thread. */
function threadCpu() {
  const out = { engine: 0, rocksdb: 0, main: 0 };
  for (const tid of readdirSync("/proc/self/task")) {
    let stat;
    try {
      stat = readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
    } catch {
      continue;
    }
    const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
    const f = stat.slice(stat.lastIndexOf(") ") + 2).split(" ");
    const ms = (Number(f[11]) + Number(f[12])) * 10;
    if (Number(tid) === process.pid) out.main += ms;
    else if (name.startsWith("tokio-runtime-w")) out.engine += ms;
    else if (name.startsWith("rocksdb")) out.rocksdb += ms;
  }
  return out;
}

const subjects = [];
for (const [i, root] of roots.entries()) {
  const store = await loadStore(root, i);
  const log = await store.createSurrealSessionLog({ url: `${opts.engine}://${join(tmp, `data-${i}`)}` });
  subjects.push({ root, store, log, last: new Map(), cpu: { engine: 0, rocksdb: 0, main: 0 }, wall: 0 });
}

let n = 0;
const turn = (s, at) => {
  const run = `r${++n}`;
  const data = {
    content: `message ${n}: tell me something about the weather in a city of your choice`,
    channel: "telegram",
    account: "bot1",
    peer: `user${s}`,
  };
  if (opts.keys === "idem" || opts.keys === "channel") data.idempotencyKey = `channel:k${n}`;
  if (opts.keys === "channel") data.platformMessageId = `pm${n}`;
  return [
    { kind: "message_received", at, data },
    { kind: "turn_started", at, runId: run, data: { runId: run } },
    { kind: "assistant_text", at, runId: run, data: { text: `the weather in Lisbon is sunny with a light breeze, turn ${n}` } },
    { kind: "usage", at, runId: run, data: { inputTokens: 120, outputTokens: 30 } },
    { kind: "turn_ended", at, runId: run, data: { runId: run, stopReason: "end_turn" } },
  ];
};
const batch = (subject) => {
  const at = Date.now();
  const items = [];
  for (let s = 0; s < SESSIONS; s++) {
    const events = [];
    for (let t = 0; t < TURNS; t++) events.push(...turn(s, at));
    const key = subject.store.formatSessionKey({ agent: "main", channel: "telegram", account: "bot1", peer: `user${s}` });
    const expectedSeq = subject.last.get(key) ?? 0;
    subject.last.set(key, expectedSeq + events.length);
    items.push({ sessionKey: key, events, expectedSeq, createdAt: at, updatedAt: at });
  }
  return items;
};

// Warm-up (first writes, the session rows' creation), not measured.
for (let i = 0; i < 5; i++) for (const s of subjects) await s.log.projectAppends(batch(s));
for (let i = 0; i < BATCHES; i++) {
  // Alternate which root goes first, so neither always follows the other's background work.
  const order = i % 2 === 0 ? subjects : [...subjects].reverse();
  for (const s of order) {
    const items = batch(s);
    const before = threadCpu();
    const t0 = performance.now();
    await s.log.projectAppends(items);
    s.wall += performance.now() - t0;
    const after = threadCpu();
    for (const k of Object.keys(s.cpu)) s.cpu[k] += after[k] - before[k];
  }
}
for (const s of subjects) await s.log.close();
rmSync(tmp, { recursive: true, force: true });
const events = BATCHES * SESSIONS * TURNS * 5;
const us = (ms) => Math.round(((ms * 1000) / events) * 10) / 10;
for (const s of subjects) {
  console.log(
    JSON.stringify({
      root: s.root,
      keys: opts.keys,
      turns: TURNS,
      events,
      engineUsPerEvent: us(s.cpu.engine),
      rocksdbUsPerEvent: us(s.cpu.rocksdb),
      engineUsPerTurn: Math.round(us(s.cpu.engine + s.cpu.rocksdb) * 5),
      mainUsPerEvent: us(s.cpu.main),
      wallMs: Math.round(s.wall),
      load: readFileSync("/proc/loadavg", "utf8").split(" ")[0],
    }),
  );
}
