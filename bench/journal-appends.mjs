// `node bench/journal-appends.mjs <rocksdb|surrealkv> [seconds] [bundle-dir]`: the journaled store alone, N sessions
// (env WORKERS, default 32) appending one event each for `seconds` (like bench/persistence.mjs measureAppends),
// then the backlog projected; prints acknowledged appends/s and CPU per append by thread (/proc). NOPROJ=1 keeps the
// projector idle (appends alone). Run it under `node --cpu-prof` to profile the append path. A bundle dir built from
// another commit (esbuild host/src/store/index.ts) gives an A/B in the same minute.

import { mkdtempSync, rmSync, readFileSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { importSource } from "./lib.mjs";
const engine = process.argv[2] ?? "rocksdb";
const seconds = Number(process.argv[3] ?? 2);
// The store bundled from this checkout (bench/lib.mjs importSource), or a bundle dir built from another commit.
const store = process.argv[4]
  ? await import(pathToFileURL(join(process.argv[4], "store.mjs")).href)
  : await importSource("host/src/store/index.ts", "journal-appends-store");
const key = (p) => store.formatSessionKey({ agent: "main", channel: "ws", account: "default", peer: p });
const event = (i) => ({ kind: "assistant_text", data: { text: `reply ${i}: it is sunny with a light breeze and a chance of rain later` } });
const dir = mkdtempSync(join(tmpdir(), "exoclaw-prof-store-"));
const noproj = process.env.NOPROJ === "1";
const log = noproj
  ? await store.createJournaledSessionLog({
      inner: await store.createSurrealSessionLog({ url: `${engine}://${join(dir, "data")}` }),
      dir: join(dir, "data", "journal"),
      displayUrl: "x",
      projectDelayMs: 1e9,
      maxBacklogEvents: 1e9,
      maxBacklogBytes: 1e12,
    })
  : await store.openSessionLog({ url: `${engine}://${join(dir, "data")}` });
const threadCpu = () => {
  const out = {};
  for (const t of readdirSync("/proc/self/task")) {
    const s = readFileSync(`/proc/self/task/${t}/stat`, "utf8");
    const r = s.slice(s.lastIndexOf(")") + 2).split(" ");
    const comm = t === String(process.pid) ? "main" : s.slice(s.indexOf("(") + 1, s.lastIndexOf(")"));
    out[comm] = (out[comm] ?? 0) + (Number(r[11]) + Number(r[12])) * 10;
  }
  return out;
};
// warm up
for (let i = 0; i < 200; i++) await log.append(key("warm"), [event(i)]);
if (!noproj) await log.countSessions();
const c0 = threadCpu();
const u0 = process.cpuUsage();
let done = 0;
const stopAt = performance.now() + seconds * 1000;
const t1 = performance.now();
await Promise.all(
  Array.from({ length: Number(process.env.WORKERS ?? 32) }, async (_, w) => {
    for (let i = 0; performance.now() < stopAt; i++) {
      await log.append(key(`par-${w}`), [event(i)]);
      done++;
    }
  }),
);
const el = (performance.now() - t1) / 1000;
const u1 = process.cpuUsage(u0);
const c1 = threadCpu();
const t2 = performance.now();
if (!noproj) await log.countSessions();
const drain = performance.now() - t2;
const c2 = threadCpu();
await log.close();
rmSync(dir, { recursive: true, force: true });
const diff = (a, b) =>
  Object.fromEntries(
    Object.keys(b)
      .map((k) => [k, (b[k] ?? 0) - (a[k] ?? 0)])
      .filter(([, v]) => v > 0),
  );
console.log(
  JSON.stringify({
    engine,
    appendsPerS: Math.round(done / el),
    done,
    cpuUsPerAppend: Math.round((u1.user + u1.system) / done),
    mainUsPerAppend: Math.round((((c1.main ?? 0) - (c0.main ?? 0)) * 1000) / done),
    drainMs: Math.round(drain),
    threadsDuringAppends: diff(c0, c1),
    threadsDuringDrain: diff(c1, c2),
  }),
);
