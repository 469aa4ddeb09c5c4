// Preloaded into a gateway by `bench/rss-breakdown.mjs` (`node --import ./rss-probe.mjs bin/exoclaw.js …`).
// On SIGUSR2 it appends one JSON line to the file named by EXOCLAW_RSS_PROBE: process.memoryUsage(),
// v8.getHeapStatistics() (malloced_memory, peak_malloced_memory, external) and each V8 heap space's
// committed / used bytes. When the file `${EXOCLAW_RSS_PROBE}.snapshot` names a path, it writes a
// heap snapshot there first (a full GC: take it after the RSS figures) and removes the request.
import { appendFileSync, existsSync, readFileSync, rmSync } from "node:fs";
import { getHeapSpaceStatistics, getHeapStatistics, writeHeapSnapshot } from "node:v8";

const file = process.env.EXOCLAW_RSS_PROBE;
if (file) {
  process.on("SIGUSR2", () => {
    let snapshot;
    if (existsSync(`${file}.snapshot`)) {
      const to = readFileSync(`${file}.snapshot`, "utf8").trim();
      rmSync(`${file}.snapshot`);
      writeHeapSnapshot(to);
      snapshot = to;
    }
    const spaces = Object.fromEntries(
      getHeapSpaceStatistics().map((s) => [s.space_name, { size: s.space_size, used: s.space_used_size, physical: s.physical_space_size }]),
    );
    appendFileSync(file, `${JSON.stringify({ at: Date.now(), snapshot, mem: process.memoryUsage(), heap: getHeapStatistics(), spaces })}\n`);
  });
}
