#!/usr/bin/env node
// Entry point of the `exoclaw` command; the host is bundled into dist/ by `npm install`.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

// Extism imports node:wasi for WASI plugins; Node 20 flags it experimental on every start.
// exoclaw runs plugins without WASI, so that one warning is noise; every other warning stays.
const emitWarning = process.emitWarning;
process.emitWarning = function (warning, ...rest) {
  const type = typeof rest[0] === "string" ? rest[0] : rest[0]?.type;
  if (type === "ExperimentalWarning" && String(warning).includes("WASI")) return;
  return emitWarning.call(process, warning, ...rest);
};

const entry = new URL("../dist/exoclaw.mjs", import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write("exoclaw: the host is not built (dist/exoclaw.mjs is missing). Run `npm install` or `npm run build` in the package root.\n");
  process.exit(1);
}
const { main } = await import(entry.href);
await main(process.argv);
