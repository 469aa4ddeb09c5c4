#!/usr/bin/env node
// `npm run bench:channel-state-kv`: what sharing per-sender rate windows and pairing over NATS KV
// (`[bus]`, issue 18; channels/rate-kv.ts, pairing-kv.ts) costs per channel message, on a real
// nats-server on loopback (started here, temporary store). Rate: each message is one
// SenderRateLimiter.take in-process (baseline, same run) vs one KvRateWindows.take (a KV get and,
// when the window changes, a compare-and-set put), over 50 senders with a limit of 1,000,000 per
// hour (every message admitted: the write path). Pairing: one isApproved of a paired peer (a KV
// get of the pairing state with 100 approved peers) vs the state dir's file (a stat). Then
// `--concurrency` messages of ONE sender at once (3 bus connections standing for 3 gateways):
// compare-and-set conflicts are redone, so this shows the cost of contention on one window.
// Options: --messages N (per variant, default 2000), --block N (250), --concurrency N (30).
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { importSource, startNats } from "./lib.mjs";

const { values: opts } = parseArgs({
  options: { messages: { type: "string", default: "2000" }, block: { type: "string", default: "250" }, concurrency: { type: "string", default: "30" } },
});
const MESSAGES = Number(opts.messages);
const BLOCK = Number(opts.block);
const CONCURRENCY = Number(opts.concurrency);

const groups = await importSource("host/src/channels/groups.ts", "channel-groups");
const pairingMod = await importSource("host/src/channels/pairing.ts", "channel-pairing");
const nats = await importSource("host/src/bus/nats/index.ts", "bus-nats");
const { KvRateWindows } = await importSource("host/src/channels/rate-kv.ts", "channel-rate-kv");
const { KvPairingStore } = await importSource("host/src/channels/pairing-kv.ts", "channel-pairing-kv");

const store = mkdtempSync(join(tmpdir(), "exoclaw-bench-chkv-"));
const server = await startNats();
const buses = [];
for (const id of ["g1", "g2", "g3"])
  buses.push(await nats.createNatsBus({ servers: server.url, stateDir: join(store, id), instanceId: id, connectWaitMs: 10_000 }));

const RATE = { messages: 1_000_000, perS: 3600 };
const local = new groups.SenderRateLimiter();
const shared = new KvRateWindows({ bus: buses[0] });
const file = pairingMod.PairingStore.inStateDir(join(store, "file"));
const kvPairing = new KvPairingStore({ bus: buses[0] });
const who = (i) => ({ channel: "telegram", account: "default", peer: `peer-${i}` });
for (let i = 0; i < 100; i++) {
  file.approve(file.request(who(i)).code);
  await kvPairing.approve((await kvPairing.request(who(i))).code);
}

try {
  let n = 0;
  const take = (w) => w.take(`telegram\0default\0sender-${n % 50}`, RATE, Date.now(), `m${n++}`);
  for (let i = 0; i < 100; i++) await take(shared); // warm-up (creates the bucket)
  const ns = { local: 0, shared: 0, file: 0, kv: 0 };
  for (let done = 0; done < MESSAGES; done += BLOCK) {
    for (const [name, fn] of [
      ["local", () => take(local)],
      ["shared", () => take(shared)],
      ["file", () => file.isApproved(who(done % 100))],
      ["kv", () => kvPairing.isApproved(who(done % 100))],
    ]) {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < BLOCK; i++) await fn();
      ns[name] += Number(process.hrtime.bigint() - t0);
    }
  }
  const per = Object.fromEntries(Object.entries(ns).map(([k, v]) => [k, v / MESSAGES / 1000]));
  const gw = buses.map((bus) => new KvRateWindows({ bus }));
  const t0 = process.hrtime.bigint();
  const now = Date.now();
  const d = await Promise.all(
    Array.from({ length: CONCURRENCY }, (_, i) => gw[i % 3].take("telegram\0default\0hot", { messages: 10, perS: 3600 }, now + i, `h${i}`)),
  );
  const concurrentMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const load = loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");
  console.log(`channel-state-kv bench (load ${load}; ${MESSAGES} messages per variant; nats-server on loopback)`);
  console.log(`  rate, in-process window     ${per.local.toFixed(1)} us/message`);
  console.log(
    `  rate, NATS KV window        ${per.shared.toFixed(1)} us/message (${((per.shared - per.local) / 1000).toFixed(2)} ms added: a get and a compare-and-set put)`,
  );
  console.log(`  pairing, file lookup        ${per.file.toFixed(1)} us/message (a stat)`);
  console.log(`  pairing, NATS KV lookup     ${per.kv.toFixed(1)} us/message (a get of the state, 100 approved peers)`);
  console.log(
    `  ${CONCURRENCY} messages of one sender at once over 3 connections: ${concurrentMs.toFixed(1)} ms in all, ${d.filter((x) => x.ok).length} admitted (limit 10)`,
  );
} finally {
  await Promise.all(buses.map((b) => b.close()));
  await server.stop();
  rmSync(store, { recursive: true, force: true });
}
