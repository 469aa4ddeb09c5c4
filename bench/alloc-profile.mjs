#!/usr/bin/env node
// `node bench/alloc-profile.mjs [--seconds S | --turns N] [--store memory|rocksdb|surrealkv] [--root DIR] [--provider anthropic|openai|gemini|ollama]`
//
// Where the gateway allocates, per turn, under the 50-session load of `bench:persistence` (emulator
// in its own process, uws, 50 sessions on 10 JSON connections). A sampling heap profile taken over
// the inspector with the objects collected by minor and major GCs included (`--heap-prof` keeps
// only what is still alive at exit, which hides a turn's garbage), then KB per turn by file, by the
// nearest exoclaw frame (what exoclaw code caused it, SDK calls included) and by function. Bundle
// positions are mapped to host/src through dist/exoclaw.cjs.map when `source-map-js` can be
// imported (a dependency of the UI's build), else shown as bundle lines.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import WebSocket from "ws";
import { connect, freePort, spawnUntil, stop } from "./lib.mjs";

const { values: opts } = parseArgs({
  options: {
    seconds: { type: "string", default: "6" },
    store: { type: "string", default: "memory" },
    root: { type: "string", default: fileURLToPath(new URL("..", import.meta.url)) },
    // Which provider adapter (and SDK) the turns go through: the emulator speaks each wire format.
    provider: { type: "string", default: "anthropic" },
    // N turns per session driver instead of S seconds: the same histories (20 turns per session,
    // then a new one) whatever the machine's speed, so builds compare at any load.
    turns: { type: "string" },
  },
});
const ROOT = opts.root;
/** The gateway's environment that selects `provider`, pointed at the emulator (as tests/e2e/turn.test.ts does). */
function providerEnv(provider, url) {
  switch (provider) {
    case "anthropic":
      return { ANTHROPIC_API_KEY: "sk-bench", ANTHROPIC_BASE_URL: url };
    case "openai":
      return { OPENAI_API_KEY: "sk-bench", OPENAI_BASE_URL: `${url}/v1` };
    case "ollama":
      return { EXOCLAW_PROVIDER: "ollama", OLLAMA_HOST: url };
    case "gemini":
      return { GEMINI_API_KEY: "bench-key", GOOGLE_GEMINI_BASE_URL: url };
    default:
      throw new Error(`unknown provider ${provider}`);
  }
}
const message = (i) => `message ${i}: tell me something about the weather in a city of your choice, in one sentence`;

/** A minimal Chrome DevTools Protocol client: `call(method, params)` resolves with the result. */
async function cdp(url) {
  const ws = new WebSocket(url);
  await new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  let id = 0;
  const waiting = new Map();
  ws.on("message", (d) => {
    const m = JSON.parse(d);
    if (m.id !== undefined && waiting.has(m.id)) {
      waiting.get(m.id)(m.result);
      waiting.delete(m.id);
    }
  });
  return {
    call: (method, params = {}) =>
      new Promise((resolve) => {
        waiting.set(++id, resolve);
        ws.send(JSON.stringify({ id, method, params }));
      }),
    close: () => ws.close(),
  };
}

/** Turns of 50 sessions on `conns` for `seconds` (or `turns` each), as fast as they are answered. */
async function drive(conns, seconds, tag, turns) {
  let done = 0;
  const end = performance.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: 50 }, async (_, w) => {
      for (let i = 0; turns === undefined ? performance.now() < end : i < turns; i++) {
        await conns[w % conns.length].send(message(i), `${tag}-${w}-${Math.floor(i / 20)}`);
        done++;
      }
    }),
  );
  return done;
}

/** Maps a bundle call frame to `file:line` (host/src or node_modules when the source map is there). */
async function locator() {
  let smc;
  try {
    const { SourceMapConsumer } = await import("source-map-js");
    smc = new SourceMapConsumer(JSON.parse(readFileSync(join(ROOT, "dist/exoclaw.cjs.map"), "utf8")));
  } catch {
    process.stderr.write("source-map-js not found: bundle positions are not mapped\n");
  }
  return (cf) => {
    if (smc && cf.url.endsWith("exoclaw.cjs")) {
      const p = smc.originalPositionFor({ line: cf.lineNumber + 1, column: cf.columnNumber });
      if (p.source) return `${p.source.replace(/^.*?(node_modules\/|host\/src\/)/, "$1")}:${p.line}`;
    }
    return `${cf.url.replace(/^.*node_modules\//, "node_modules/").replace(/^file:\/\/.*\//, "") || "native"}:${cf.lineNumber + 1}`;
  };
}

async function main() {
  const emulator = await spawnUntil([join(ROOT, "tests/support/emulator/main.mjs"), "--no-record"], {}, (l) => l.url);
  const state = mkdtempSync(join(tmpdir(), "exoclaw-bench-alloc-"));
  const inspectPort = await freePort();
  const env = {
    EXOCLAW_STATE_DIR: state,
    EXOCLAW_LOG_LEVEL: "info",
    ...providerEnv(opts.provider, emulator.value),
    EXOCLAW_TRANSPORT: "uws",
    EXOCLAW_STORE: opts.store === "memory" ? "memory" : `${opts.store}://${join(state, "data")}`,
  };
  const gw = await spawnUntil([`--inspect=127.0.0.1:${inspectPort}`, join(ROOT, "bin/exoclaw.js"), "gateway", "--port", "0"], env, (l) =>
    l.msg === "gateway ready" ? l : undefined,
  );
  let profile;
  let turns;
  let elapsed;
  try {
    const [{ webSocketDebuggerUrl }] = await (await fetch(`http://127.0.0.1:${inspectPort}/json/list`)).json();
    const inspector = await cdp(webSocketDebuggerUrl);
    const conns = await Promise.all(Array.from({ length: 10 }, () => connect(`ws://127.0.0.1:${gw.value.port}/ws`)));
    await drive(conns, 2, "warm");
    await inspector.call("HeapProfiler.enable");
    await inspector.call("HeapProfiler.startSampling", {
      samplingInterval: 4096,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    });
    const t0 = performance.now();
    turns = await drive(conns, Number(opts.seconds), "load", opts.turns === undefined ? undefined : Number(opts.turns));
    elapsed = (performance.now() - t0) / 1000;
    ({ profile } = await inspector.call("HeapProfiler.stopSampling"));
    inspector.close();
    for (const c of conns) c.close();
  } finally {
    await stop(gw.proc);
    await stop(emulator.proc);
    rmSync(state, { recursive: true, force: true });
  }

  const where = await locator();
  const byFile = new Map();
  const byOwner = new Map();
  const byFunction = new Map();
  let total = 0;
  const add = (m, k, v) => m.set(k, (m.get(k) ?? 0) + v);
  const walk = (node, stack) => {
    const at = where(node.callFrame);
    const frames = [...stack, at];
    if (node.selfSize) {
      total += node.selfSize;
      add(byFunction, `${node.callFrame.functionName || "(anonymous)"} ${at}`, node.selfSize);
      const file = at.replace(/:\d+$/, "");
      add(byFile, file.match(/^node_modules\/((@[^/]+\/)?[^/]+)/)?.[0] ?? file, node.selfSize);
      const owner = [...frames].reverse().find((f) => f.startsWith("host/src/"));
      add(byOwner, owner ? owner.replace(/:\d+$/, "") : "(no exoclaw frame)", node.selfSize);
    }
    for (const child of node.children) walk(child, frames);
  };
  walk(profile.head, []);
  const show = (title, m, n) => {
    console.log(`\n${title}`);
    for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, n)) {
      console.log(`${(v / turns / 1024).toFixed(1).padStart(7)} KB/turn ${((v / total) * 100).toFixed(1).padStart(5)} %  ${k}`);
    }
  };
  console.log(
    `${turns} turns in ${elapsed.toFixed(1)} s (store ${opts.store}, provider ${opts.provider}): ${(total / turns / 1024).toFixed(1)} KB allocated per turn`,
  );
  show("by file (self)", byFile, 25);
  show("by nearest exoclaw frame (self and callees)", byOwner, 20);
  show("by function (self)", byFunction, 30);
}

main().catch((err) => {
  process.stderr.write(`bench failed: ${err.stack ?? err}\n`);
  process.exit(1);
});
