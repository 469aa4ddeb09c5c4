#!/usr/bin/env node
// `npm run bench:router` (also run by `npm run bench`): what routing one inbound message costs
// with 10, 1k and 100k bindings, and what compiling 100k bindings costs at config load.
// The router (host/src/router) is bundled with esbuild into dist/bench-router.mjs and imported
// directly: it is a pure function, so no gateway process is involved.
//
// Bindings are a realistic mix: mostly per-peer bindings (some also pinned to a channel), a few
// per guild, team and account, and a handful per channel. The messages resolved are a fixed mix:
// hits at every tier plus misses that fall through to the default agent.
//
// Timing: `process.hrtime.bigint()` around batches of --batch resolutions (a single resolution
// is shorter than the clock's own overhead), after a warm-up; p50/p99 are over the per-call mean
// of each batch, so p99 is the tail of batches (GC, JIT), not of single calls. "fresh ids" are
// the same messages each parsed from its own JSON text, as a gateway receives them (see
// measureFresh): the main columns reuse 4096 message objects, whose id strings keep their hash.
// Options: --batches N (per binding count), --batch N (resolutions per batch), --compiles N.
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { prng } from "../tests/support/prng.mjs";
import { stats, importSource } from "./lib.mjs";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const { values: opts } = parseArgs({
  options: {
    batches: { type: "string", default: "3000" },
    batch: { type: "string", default: "100" },
    compiles: { type: "string", default: "5" },
  },
});
const BATCHES = Number(opts.batches);
const BATCH = Number(opts.batch);
const COMPILES = Number(opts.compiles);
const FRESH_BATCHES = 1000;
const SIZES = [10, 1_000, 100_000];
const log = (s) => process.stderr.write(`${s}\n`);

async function importRouter() {
  return importSource("host/src/router/index.ts", "router");
}

const CHANNELS = ["telegram", "slack", "whatsapp", "discord", "webhook"];
const AGENTS = ["main", "support", "sales", "ops", "research", "family", "work", "night"];

/**
 * `n` bindings: ~90% peer (a third of them also set channel), 4% guild(+channel), 3% team,
 * 2% account(+channel), the rest channel-only; at least one of each kind. Also returns the ids
 * used, so messages can be built that hit each tier.
 */
function makeBindings(n, rand) {
  const pick = (xs) => xs[Math.floor(rand() * xs.length)];
  const kinds = {
    peer: Math.max(1, Math.round(n * 0.9)),
    guild: Math.max(1, Math.round(n * 0.04)),
    team: Math.max(1, Math.round(n * 0.03)),
    account: Math.max(1, Math.round(n * 0.02)),
  };
  kinds.channel = Math.max(1, n - kinds.peer - kinds.guild - kinds.team - kinds.account);
  const bindings = [];
  const ids = { peer: [], guild: [], team: [], account: [], channel: [] };
  for (let i = 0; i < kinds.peer; i++) {
    const channel = pick(CHANNELS);
    const peer = String(100_000_000 + i * 7919);
    ids.peer.push({ channel, peer });
    bindings.push(i % 3 === 0 ? { agent: pick(AGENTS), peer, channel } : { agent: pick(AGENTS), peer });
  }
  for (let i = 0; i < kinds.guild; i++) {
    const guild = String(900_000_000_000 + i);
    ids.guild.push({ channel: "discord", guild });
    bindings.push({ agent: pick(AGENTS), guild, channel: "discord" });
  }
  for (let i = 0; i < kinds.team; i++) {
    const team = `T${(0x100000 + i).toString(36).toUpperCase()}`;
    ids.team.push({ channel: "slack", team });
    bindings.push({ agent: pick(AGENTS), team });
  }
  for (let i = 0; i < kinds.account; i++) {
    const channel = pick(CHANNELS);
    const account = `bot${i}`;
    ids.account.push({ channel, account });
    bindings.push({ agent: pick(AGENTS), account, channel });
  }
  for (let i = 0; i < kinds.channel; i++) {
    const channel = i < CHANNELS.length ? CHANNELS[i] : `custom${i}`;
    ids.channel.push({ channel });
    bindings.push({ agent: pick(AGENTS), channel });
  }
  // Config order is not grouped by kind in real files.
  for (let i = bindings.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [bindings[i], bindings[j]] = [bindings[j], bindings[i]];
  }
  return { bindings, ids };
}

/**
 * 4096 messages: 40% peer hits, 12% guild, 12% team, 12% account, 12% channel-only hits and
 * 12% misses (a channel and ids no binding names).
 */
function makeMessages(ids, rand) {
  const pick = (xs) => xs[Math.floor(rand() * xs.length)];
  const stranger = () => String(200_000_000 + Math.floor(rand() * 1e8));
  const out = [];
  for (let i = 0; i < 4096; i++) {
    const r = rand();
    if (r < 0.4) {
      const { channel, peer } = pick(ids.peer);
      out.push({ channel, account: "default", peer });
    } else if (r < 0.52) {
      out.push({ channel: "discord", account: "default", peer: stranger(), guild: pick(ids.guild).guild });
    } else if (r < 0.64) {
      out.push({ channel: "slack", account: "default", peer: `U${stranger()}`, team: pick(ids.team).team });
    } else if (r < 0.76) {
      const { channel, account } = pick(ids.account);
      out.push({ channel, account, peer: stranger() });
    } else if (r < 0.88) {
      out.push({ channel: pick(ids.channel).channel, account: "default", peer: stranger() });
    } else {
      out.push({ channel: "matrix", account: "default", peer: stranger(), guild: "g-none", team: "t-none" });
    }
  }
  return out;
}

function measureResolve(router, messages) {
  const mask = messages.length - 1;
  let sink = 0;
  let k = 0;
  const tally = {};
  for (const m of messages) {
    const by = router.resolve(m).matchedBy;
    tally[by] = (tally[by] ?? 0) + 1;
  }
  for (let i = 0; i < 200_000; i++) sink += router.resolve(messages[k++ & mask]).sessionKey.length; // warm-up (JIT)
  const samples = new Array(BATCHES);
  for (let b = 0; b < BATCHES; b++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < BATCH; i++) sink += router.resolve(messages[k++ & mask]).sessionKey.length;
    samples[b] = Number(process.hrtime.bigint() - t0) / BATCH;
  }
  if (sink === 0) throw new Error("resolve returned empty session keys");
  return { ...stats(samples), tally, fresh: measureFresh(router, messages) };
}

/**
 * As a gateway sees them: every message parsed from its own JSON text, so no id string has its
 * hash cached yet and none is the very string object stored in the index. One pass over
 * FRESH_BATCHES x BATCH such messages, built before timing.
 */
function measureFresh(router, messages) {
  const fresh = JSON.parse(JSON.stringify(Array.from({ length: FRESH_BATCHES * BATCH }, (_, i) => messages[i % messages.length])));
  let sink = 0;
  const samples = new Array(FRESH_BATCHES);
  for (let b = 0, k = 0; b < FRESH_BATCHES; b++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < BATCH; i++) sink += router.resolve(fresh[k++]).sessionKey.length;
    samples[b] = Number(process.hrtime.bigint() - t0) / BATCH;
  }
  if (sink === 0) throw new Error("resolve returned empty session keys");
  return stats(samples);
}

/**
 * The floor: one bare Map.get per message on a Map with one entry per binding (keyed by the
 * binding's most specific value), the same messages. Shows how much of the growth from 10 to
 * 100k bindings is the memory hierarchy (a bigger table misses the CPU caches), not the router.
 */
function measureMapFloor(bindings, messages) {
  const map = new Map(bindings.map((b, i) => [b.peer ?? b.guild ?? b.team ?? b.account ?? b.channel, i]));
  const mask = messages.length - 1;
  let sink = 0;
  let k = 0;
  for (let i = 0; i < 200_000; i++) sink += map.get(messages[k++ & mask].peer) ?? 1;
  const samples = new Array(BATCHES);
  for (let b = 0; b < BATCHES; b++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < BATCH; i++) sink += map.get(messages[k++ & mask].peer) ?? 1;
    samples[b] = Number(process.hrtime.bigint() - t0) / BATCH;
  }
  if (sink === 0) throw new Error("unreachable");
  return stats(samples);
}

function measureCompile(mod, bindings) {
  const samples = [];
  for (let i = 0; i < COMPILES; i++) {
    const t0 = process.hrtime.bigint();
    mod.compileRouter(bindings, AGENTS, "main");
    samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return stats(samples);
}

async function main() {
  const mod = await importRouter();
  log(`router bench: ${BATCHES} batches x ${BATCH} resolutions per binding count, ${COMPILES} compiles of 100k bindings`);
  const results = [];
  for (const n of SIZES) {
    const rand = prng(0x5eed + n);
    const { bindings, ids } = makeBindings(n, rand);
    const messages = makeMessages(ids, rand);
    const router = mod.compileRouter(bindings, AGENTS, "main");
    results.push({ ...measureResolve(router, messages), n, floor: measureMapFloor(bindings, messages) });
  }
  const { bindings: big } = makeBindings(100_000, prng(1));
  const compile = measureCompile(mod, big);
  globalThis.gc?.();
  const heapBefore = process.memoryUsage().heapUsed;
  const keep = mod.compileRouter(big, AGENTS, "main");
  globalThis.gc?.();
  const heapMb = (process.memoryUsage().heapUsed - heapBefore) / 1024 / 1024;

  const f = (x, d = 0) => x.toFixed(d);
  const rows = [["bindings", "resolve p50 ns", "resolve p99 ns", "max ns", "fresh ids p50 ns", "fresh ids p99 ns", "bare Map.get p50 ns", "target"]];
  for (const r of results)
    rows.push([r.n.toLocaleString("en"), f(r.p50), f(r.p99), f(r.max), f(r.fresh.p50), f(r.fresh.p99), f(r.floor.p50, 1), "p50 < 2000, flat"]);
  const [lo, hi] = [results[0], results[2]];
  rows.push([
    "ratio 100k/10",
    f(hi.p50 / lo.p50, 2),
    f(hi.p99 / lo.p99, 2),
    "",
    f(hi.fresh.p50 / lo.fresh.p50, 2),
    f(hi.fresh.p99 / lo.fresh.p99, 2),
    f(hi.floor.p50 / lo.floor.p50, 2),
    "~1",
  ]);
  rows.push(["compile 100k, ms", `p50 ${f(compile.p50, 1)}`, `max ${f(compile.max, 1)}`, "", "", "", "", ""]);
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  console.log("\nrouter: resolve one message (agent, session key, matchedBy)");
  for (const r of rows) console.log(r.map((c, i) => c.padEnd(widths[i])).join("  "));
  const t = results[2].tally;
  console.log(
    `\nmessage mix (100k bindings): ${Object.entries(t)
      .map(([k, v]) => `${k} ${v}`)
      .join(", ")} of 4096`,
  );
  if (globalThis.gc) console.log(`heap held by a compiled 100k-binding router: ~${f(heapMb, 1)} MB`);
  if (!keep) throw new Error("unreachable");
  if (results.some((r) => r.p50 >= 2000)) console.log("NOTE: a p50 is above the 2 us target on this machine");
}

main().catch((err) => {
  log(`bench failed: ${err.stack ?? err}`);
  process.exit(1);
});
