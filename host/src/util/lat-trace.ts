// TEMPORARY instrumentation (issue 13 latency): EXOCLAW_LAT_TRACE=<file> records marks per turn.
import { writeFileSync } from "node:fs";
const file = process.env.EXOCLAW_LAT_TRACE;
let cur: Record<string, number> | undefined;
const turns: Record<string, number>[] = [];
export function latBegin(): void {
  if (!file) return;
  cur = { t0: performance.now() };
  turns.push(cur);
}
export function latMark(name: string): void {
  if (!cur) return;
  let k = name;
  for (let i = 1; k in cur; i++) k = `${name}#${i}`;
  cur[k] = performance.now() - cur.t0!;
}
if (file) process.on("exit", () => writeFileSync(file, JSON.stringify(turns)));
