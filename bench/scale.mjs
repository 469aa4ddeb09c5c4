#!/usr/bin/env node
// `npm run bench:scale`: the gateway at scale, each figure beside a baseline taken in the same run.
//
// 1. Many sessions: 10,000 sessions with one turn each (sessions/s, gateway RSS and CPU ms per
//    session after), on the default durable store (embedded SurrealDB) and on the memory store.
// 2. Many concurrent sessions: 500 sessions sending turns back to back (turn p50/p99, turns/s),
//    against 50 sessions on the same gateway (the baseline).
// 3. Many idle WebSocket connections held by one gateway: bytes of RSS per connection, against
//    the gateway's RSS before they opened; uWebSockets.js and ws. The clients run in their own
//    processes, several source addresses (127.0.0.1, 127.0.0.2, ...) so the ephemeral port range
//    (~28,000 ports per source address) is no limit; each process's open-file limit is raised with
//    `ulimit -n` up to the hard limit. When the target cannot be reached (the hard limit, memory),
//    the bench prints how far it got and why.
//
// The provider emulator (tests/support/emulator) answers every turn at once ("pong").
// Options: --sessions 10000 --concurrent 500 --seconds 5 --connections 100000 --stores durable,memory
//          --transports uws,ws --parts sessions,concurrent,connections
import { mkdtempSync, rmSync } from "node:fs";
import { connect as netConnect } from "node:net";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { connect, cpuMs, maxFdsOf, rssMb, spawnUntil, stats, stop } from "./lib.mjs";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const { values: opts } = parseArgs({
  options: {
    sessions: { type: "string", default: "10000" },
    concurrent: { type: "string", default: "500" },
    seconds: { type: "string", default: "5" },
    connections: { type: "string", default: "100000" },
    stores: { type: "string", default: "durable,memory" },
    transports: { type: "string", default: "uws,ws" },
    parts: { type: "string", default: "sessions,concurrent,connections" },
    // Internal: run as a connection holder (see holdConnections).
    hold: { type: "string" },
    count: { type: "string" },
    "first-address": { type: "string" },
  },
});

const log = (s) => process.stderr.write(`${s}\n`);
const f = (n, d = 2) => (Number.isFinite(n) ? n.toFixed(d) : "n/a");
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** Open-file limit asked for each bench process; the hard limit caps it (see spawnUntil). */
const WANT_FDS = 300_000;
/** Connections per holder process (below a 20,000 hard limit with room for node's own fds). */
const PER_HOLDER = 19_000;
/**
 * Connections per source address (127.0.0.1, then .2, .3, ...): ~28,000 ephemeral ports each on
 * the default range; 25,000 used per address.
 */
const PER_ADDRESS = 25_000;

/**
 * `{ store, transport }` -> gateway environment; `store` "durable" is the zero-config default,
 * "surrealkv" / "rocksdb" pick the embedded engine, "memory" the in-process store.
 */
function gatewayEnv({ store, transport }, state, providerUrl) {
  return {
    EXOCLAW_TRANSPORT: transport,
    ...(store === "memory" ? { EXOCLAW_STORE: "memory" } : {}),
    // An explicit embedded engine (the default "durable" is rocksdb for a new state directory).
    ...(store === "surrealkv" || store === "rocksdb" ? { EXOCLAW_STORE: `${store}://${join(state, "data")}` } : {}),
    EXOCLAW_STATE_DIR: state,
    EXOCLAW_LOG_LEVEL: "info",
    ANTHROPIC_API_KEY: "sk-bench",
    ANTHROPIC_BASE_URL: providerUrl,
  };
}

async function startGateway(config, providerUrl) {
  const state = mkdtempSync(join(tmpdir(), "exoclaw-scale-"));
  const gw = await spawnUntil(
    [join(ROOT, "bin/exoclaw.js"), "gateway", "--port", "0"],
    gatewayEnv(config, state, providerUrl),
    (l) => (l.msg === "gateway ready" ? l : undefined),
    60_000,
    { maxFds: WANT_FDS },
  );
  return {
    pid: gw.proc.pid,
    port: gw.value.port,
    transport: gw.value.transport,
    async close() {
      await stop(gw.proc);
      rmSync(state, { recursive: true, force: true });
    },
  };
}

/** Runs `total` jobs with `concurrency` workers; `job(i)` for i in [0, total). */
async function pool(total, concurrency, job) {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) await job(next++);
    }),
  );
}

/** Part 1: `n` sessions, one turn each, 50 in flight over 10 connections. */
async function manySessions(gw, n) {
  const url = `ws://127.0.0.1:${gw.port}/ws`;
  const conns = await Promise.all(Array.from({ length: 10 }, () => connect(url)));
  await pool(200, 50, (i) => conns[i % 10].send("ping", `warm-${i}`));
  await sleep(500);
  const idleRss = rssMb(gw.pid);
  const cpu0 = cpuMs(gw.pid);
  const t0 = performance.now();
  await pool(n, 50, (i) => conns[i % 10].send("ping", `s-${i}`));
  const secs = (performance.now() - t0) / 1000;
  const cpu = (cpuMs(gw.pid) - cpu0) / n;
  const rss = rssMb(gw.pid);
  conns.forEach((c) => c.close());
  return { rate: n / secs, idleRss, rss, cpuPerSession: cpu };
}

/** Part 2: `sessions` sessions sending back to back for `seconds`, over up to 50 connections. */
async function concurrentTurns(gw, sessions, seconds) {
  const url = `ws://127.0.0.1:${gw.port}/ws`;
  const conns = await Promise.all(Array.from({ length: Math.min(sessions, 50) }, () => connect(url)));
  const samples = [];
  let stopAt = performance.now() + 500;
  let measuring = false;
  const worker = async (w) => {
    for (let i = 0; performance.now() < stopAt; i++) {
      const t = performance.now();
      await conns[w % conns.length].send("ping", `c${sessions}-${w}-${Math.floor(i / 20)}`);
      if (measuring) samples.push(performance.now() - t);
    }
  };
  await Promise.all(Array.from({ length: sessions }, (_, w) => worker(w))); // warm-up
  measuring = true;
  const t0 = performance.now();
  stopAt = t0 + seconds * 1000;
  await Promise.all(Array.from({ length: sessions }, (_, w) => worker(w)));
  const rate = samples.length / ((performance.now() - t0) / 1000);
  conns.forEach((c) => c.close());
  return { ...stats(samples), rate };
}

/**
 * Answers the server's pings (uWS pings idle sockets and closes those that do not answer within
 * its idle timeout): walks the unmasked server frames in `data` (control frames carry at most 125
 * bytes, so one TCP read holds them whole) and sends a masked pong with each ping's payload.
 */
function answerPings(sock, data) {
  for (let at = 0; at + 2 <= data.length; ) {
    const opcode = data[at] & 0x0f;
    let len = data[at + 1] & 0x7f;
    let head = 2;
    if (len === 126) {
      len = data.readUInt16BE(at + 2);
      head = 4;
    } else if (len === 127) return; // a data frame this large is not expected on an idle socket
    if (opcode === 0x9 && len <= 125) {
      const mask = Buffer.from([1, 2, 3, 4]);
      const payload = Buffer.from(data.subarray(at + head, at + head + len));
      for (let k = 0; k < payload.length; k++) payload[k] ^= mask[k % 4];
      sock.write(Buffer.concat([Buffer.from([0x8a, 0x80 | len]), mask, payload]));
    }
    at += head + len;
  }
}

/**
 * Holder mode (`--hold <port> --count N --first-address K`): opens N WebSocket connections to
 * 127.0.0.1:<port> from source addresses 127.0.0.K, 127.0.0.K+1, ... (PER_ADDRESS each), with a
 * bare HTTP upgrade on a TCP socket (a `ws` client object per connection would cost the holder
 * far more memory than the gateway), 256 handshakes in flight. Prints `{"open":n}` lines while
 * opening, then `{"done":n,"failed":m,"error":"..."}`, and holds the sockets until SIGTERM.
 */
async function holdConnections(port, count, firstAddress) {
  const sockets = [];
  let failed = 0;
  let firstError;
  const open = (i) =>
    new Promise((resolve) => {
      // The first address's connections let connect() pick the source port: binding first
      // (`localAddress`) makes Linux search the port table per bind, ~50 ms each at 5,000 sockets.
      const address = firstAddress + Math.floor(i / PER_ADDRESS);
      const sock = netConnect({ host: "127.0.0.1", port, ...(address > 1 ? { localAddress: `127.0.0.${address}` } : {}) });
      let buf = "";
      const fail = (err) => {
        failed++;
        firstError ??= err.message ?? String(err);
        sock.destroy();
        resolve();
      };
      sock.once("error", fail);
      sock.once("connect", () =>
        sock.write(
          `GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${Buffer.from(String(i).padStart(16, "0")).toString("base64")}\r\n\r\n`,
        ),
      );
      const onData = (d) => {
        buf += d.toString("latin1");
        if (!buf.includes("\r\n\r\n")) return;
        sock.off("data", onData);
        sock.off("error", fail);
        if (!buf.startsWith("HTTP/1.1 101")) return fail(new Error(buf.split("\r\n")[0]));
        sock.on("error", () => {});
        sock.on("data", (frames) => answerPings(sock, frames));
        sockets.push(sock);
        resolve();
      };
      sock.on("data", onData);
    });
  let last = performance.now();
  await pool(count, 256, async (i) => {
    await open(i);
    if (performance.now() - last > 1000) {
      last = performance.now();
      process.stdout.write(`${JSON.stringify({ open: sockets.length })}\n`);
    }
  });
  process.stdout.write(`${JSON.stringify({ done: sockets.length, failed, error: firstError })}\n`);
  process.on("SIGTERM", () => process.exit(0));
  setInterval(() => {}, 1 << 30);
}

/** Part 3: opens `target` idle connections to one gateway from holder processes. */
async function idleConnections(gw, target) {
  const limit = maxFdsOf(gw.pid);
  await sleep(500);
  const rss0 = rssMb(gw.pid);
  // The gateway needs a descriptor per connection plus its own (~100: store, plugins, listeners).
  const reachable = Math.min(target, limit - 200);
  const holders = [];
  let opened = 0;
  let why;
  try {
    for (let start = 0, h = 0; start < reachable; start += PER_HOLDER, h++) {
      const count = Math.min(PER_HOLDER, reachable - start);
      const holder = await spawnUntil(
        [fileURLToPath(import.meta.url), "--hold", String(gw.port), "--count", String(count), "--first-address", String(1 + Math.floor(start / PER_ADDRESS))],
        {},
        (l) => (l.done !== undefined ? l : undefined),
        600_000,
        { maxFds: count + 200 },
      );
      holders.push(holder.proc);
      opened += holder.value.done;
      if (holder.value.failed > 0) {
        why = `${holder.value.failed} failed: ${holder.value.error}`;
        break;
      }
    }
  } catch (err) {
    why = err.message;
  }
  await sleep(2000);
  const rss1 = rssMb(gw.pid);
  await Promise.all(holders.map((p) => stop(p)));
  if (reachable < target)
    why ??= `the gateway's open-file limit is ${limit} (its hard limit, ulimit -Hn, which this machine does not let a process raise; a systemd unit sets it with LimitNOFILE)`;
  return { target, opened, limit, rss0, rss1, bytesPerConn: ((rss1 - rss0) * 1024 * 1024) / Math.max(1, opened), why };
}

function table(rows) {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  for (const r of rows) console.log(r.map((c, i) => String(c).padEnd(widths[i])).join("  "));
  console.log("");
}

async function main() {
  const parts = new Set(opts.parts.split(","));
  const stores = opts.stores.split(",");
  const transports = opts.transports.split(",");
  const SESSIONS = Number(opts.sessions);
  const CONCURRENT = Number(opts.concurrent);
  const SECONDS = Number(opts.seconds);
  log(`exoclaw scale bench: ${SESSIONS} one-turn sessions, ${CONCURRENT} concurrent sessions x ${SECONDS} s, ${opts.connections} idle connections`);
  const emulator = await spawnUntil([join(ROOT, "tests/support/emulator/main.mjs"), "--no-record"], {}, (l) => l.url, 20_000, { maxFds: WANT_FDS });
  const providerUrl = emulator.value;
  const load0 = loadavg();
  const sessionRows = [["", ...stores.map((s) => (s === "durable" ? "default (durable)" : s)), "target"]];
  const concRows = [["", ...stores.flatMap((s) => [`${s}: 50 sessions (baseline)`, `${s}: ${CONCURRENT} sessions`, "ratio"])]];
  const connRows = [["", ...transports, "target"]];
  try {
    if (parts.has("sessions") || parts.has("concurrent")) {
      const res = {};
      for (const store of stores) {
        log(`sessions on the ${store} store...`);
        const gw = await startGateway({ store, transport: "uws" }, providerUrl);
        try {
          if (parts.has("sessions")) res[store] = { sessions: await manySessions(gw, SESSIONS) };
          else res[store] = {};
          if (parts.has("concurrent")) {
            res[store].base = await concurrentTurns(gw, 50, SECONDS);
            res[store].conc = await concurrentTurns(gw, CONCURRENT, SECONDS);
          }
        } finally {
          await gw.close();
        }
      }
      if (parts.has("sessions")) {
        const col = (fn) => stores.map((s) => fn(res[s].sessions));
        sessionRows.push(
          [`sessions/s (${SESSIONS}, one turn each)`, ...col((r) => f(r.rate, 0)), ""],
          ["gateway CPU ms per session", ...col((r) => f(r.cpuPerSession, 3)), ""],
          ["RSS before MB (baseline)", ...col((r) => f(r.idleRss, 1)), ""],
          [`RSS after ${SESSIONS} sessions MB`, ...col((r) => f(r.rss, 1)), "<= 200"],
          ["RSS after / before", ...col((r) => f(r.rss / r.idleRss)), ""],
        );
        table(sessionRows);
      }
      if (parts.has("concurrent")) {
        const cells = (fn) => stores.flatMap((s) => [fn(res[s].base), fn(res[s].conc), f(fn(res[s].conc, true) / fn(res[s].base, true))]);
        concRows.push(
          ["turn p50 ms", ...cells((r, raw) => (raw ? r.p50 : f(r.p50)))],
          ["turn p99 ms", ...cells((r, raw) => (raw ? r.p99 : f(r.p99)))],
          ["turns/s", ...cells((r, raw) => (raw ? r.rate : f(r.rate, 0)))],
        );
        table(concRows);
      }
    }
    if (parts.has("connections")) {
      const res = {};
      for (const transport of transports) {
        log(`idle connections on ${transport}...`);
        const gw = await startGateway({ store: "memory", transport }, providerUrl);
        try {
          res[transport] = await idleConnections(gw, Number(opts.connections));
        } finally {
          await gw.close();
        }
      }
      const col = (fn) => transports.map((t) => fn(res[t]));
      connRows.push(
        ["connections opened", ...col((r) => `${r.opened} of ${r.target}`), String(opts.connections)],
        ["gateway open-file limit", ...col((r) => r.limit), ""],
        ["RSS before MB (baseline)", ...col((r) => f(r.rss0, 1)), ""],
        ["RSS with them open MB", ...col((r) => f(r.rss1, 1)), ""],
        ["bytes per idle connection", ...col((r) => f(r.bytesPerConn, 0)), "<= 4096"],
      );
      table(connRows);
      for (const t of transports) if (res[t].why) console.log(`${t}: stopped at ${res[t].opened}: ${res[t].why}`);
    }
  } finally {
    await stop(emulator.proc);
  }
  const load1 = loadavg();
  console.log(`machine load (1/5/15 min) at start: ${load0.map((l) => l.toFixed(2)).join(" ")}, at end: ${load1.map((l) => l.toFixed(2)).join(" ")}`);
}

if (opts.hold !== undefined) {
  holdConnections(Number(opts.hold), Number(opts.count), Number(opts["first-address"])).catch((err) => {
    log(`holder failed: ${err.stack ?? err}`);
    process.exit(1);
  });
} else {
  main().catch((err) => {
    log(`bench failed: ${err.stack ?? err}`);
    process.exit(1);
  });
}
