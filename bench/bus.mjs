#!/usr/bin/env node
// The message bus, in-process vs NATS JetStream, in one run:
// - latency: one message at a time, publish -> handler called (p50/p99/max over N messages);
// - throughput: M messages over S sessions published concurrently, until the last is handled.
//
//   npm run bench:bus [-- --latency 1000 --messages 10000 --sessions 100]
//
// Starts its own nats-server (JetStream, a temporary store, a free loopback port); needs the
// binary (`node scripts/ensure-nats.mjs` installs it).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { startNats, importSource } from "./lib.mjs";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const log = (s) => process.stderr.write(`${s}\n`);
const { values: args } = parseArgs({
  options: {
    latency: { type: "string", default: "1000" },
    messages: { type: "string", default: "10000" },
    sessions: { type: "string", default: "100" },
  },
});
const LAT_N = Number(args.latency);
const MSGS = Number(args.messages);
const SESSIONS = Number(args.sessions);

async function importBus() {
  return importSource("host/src/bus/index.ts", "bus");
}

function stats(samples) {
  const s = Float64Array.from(samples).sort();
  const at = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return { p50: at(0.5), p99: at(0.99), max: s[s.length - 1] };
}

async function measure(bus, mod, label) {
  // latency: one at a time
  let resolveOne;
  let seen = 0;
  const lat = [];
  await bus.consume({
    stream: "in",
    durable: "bench-lat",
    handler: () => {
      seen++;
      resolveOne?.();
    },
  });
  const subject = mod.inboundSubject({ channel: "bench", account: "a", peer: "lat" });
  // warm-up (also waits for the NATS consumer to hold its partitions)
  for (let i = 0; i < 50; i++) {
    const done = new Promise((r) => (resolveOne = r));
    await bus.publish(subject, { i, text: "warm-up" }, { msgId: `w-${i}` });
    await done;
  }
  for (let i = 0; i < LAT_N; i++) {
    const done = new Promise((r) => (resolveOne = r));
    const t0 = performance.now();
    await bus.publish(subject, { i, text: "hello from a channel, a short inbound message" }, { msgId: `l-${i}` });
    await done;
    lat.push(performance.now() - t0);
  }
  // throughput: many sessions at once
  let handled = 0;
  let allDone;
  const finished = new Promise((r) => (allDone = r));
  await bus.consume({
    stream: "out",
    durable: "bench-tp",
    maxAckPending: 512,
    handler: () => {
      if (++handled === MSGS) allDone();
    },
  });
  const subjects = Array.from({ length: SESSIONS }, (_, s) => mod.outboundSubject({ channel: "bench", account: "a", peer: `p${s}` }));
  // warm the throughput consumer too
  const t0 = performance.now();
  const perSession = Math.ceil(MSGS / SESSIONS);
  let published = 0;
  const pubs = [];
  for (let n = 0; n < perSession && published < MSGS; n++) {
    for (let s = 0; s < SESSIONS && published < MSGS; s++, published++)
      pubs.push(bus.publish(subjects[s], { n, text: "reply chunk" }, { msgId: `t-${s}-${n}` }));
    if (pubs.length >= 1000) await Promise.all(pubs.splice(0));
  }
  await Promise.all(pubs);
  const pubMs = performance.now() - t0;
  await finished;
  const totalMs = performance.now() - t0;
  const l = stats(lat);
  return { label, p50: l.p50, p99: l.p99, max: l.max, pubRate: (MSGS / pubMs) * 1000, rate: (MSGS / totalMs) * 1000, totalMs, seen };
}

const mod = await importBus();
const results = [];
const stateMem = mkdtempSync(join(tmpdir(), "exoclaw-bench-bus-"));
{
  log("in-process bus ...");
  const bus = await mod.createBus({ kind: "memory", stateDir: stateMem });
  results.push(await measure(bus, mod, "in-process"));
  await bus.close();
}
const nats = await startNats();
const stateNats = mkdtempSync(join(tmpdir(), "exoclaw-bench-bus-"));
try {
  log("NATS JetStream bus ...");
  const bus = await mod.createBus({ kind: "nats", servers: nats.url, stateDir: stateNats, partitions: 16, ackWaitMs: 5_000 });
  results.push(await measure(bus, mod, "NATS JetStream"));
  await bus.close();
} finally {
  await nats.stop();
  rmSync(stateMem, { recursive: true, force: true });
  rmSync(stateNats, { recursive: true, force: true });
}

const ms = (x) => x.toFixed(3);
console.log(`\nbus: publish -> handler, ${LAT_N} messages one at a time; throughput: ${MSGS} messages over ${SESSIONS} sessions\n`);
console.log("| back end | latency p50 | p99 | max | publish rate | end-to-end throughput |");
console.log("|---|---|---|---|---|---|");
for (const r of results) {
  console.log(
    `| ${r.label} | ${ms(r.p50)} ms | ${ms(r.p99)} ms | ${ms(r.max)} ms | ${Math.round(r.pubRate)} msg/s | ${Math.round(r.rate)} msg/s (${Math.round(r.totalMs)} ms) |`,
  );
}
