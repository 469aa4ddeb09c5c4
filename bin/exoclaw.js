#!/usr/bin/env node
// Entry point of the `exoclaw` command; the host is compiled to dist/ by `npm install`.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const entry = new URL("../dist/cli/main.js", import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write("exoclaw: the host is not built (dist/ is missing). Run `npm install` or `npm run build` in the package root.\n");
  process.exit(1);
}
const { main } = await import(entry.href);
await main(process.argv);
