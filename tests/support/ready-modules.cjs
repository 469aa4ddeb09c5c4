// Preloaded into a gateway process (`node --require <this file> bin/exoclaw.js gateway`): when the
// process writes its "gateway ready" log line, reports once on stderr (`ready-modules: <JSON>`)
// what it had loaded by then: Node's built-in modules (`process.moduleLoadList`), the files in
// the CommonJS module cache, and the native addons mapped into the process (`.node` files of
// /proc/self/maps, however they were loaded); then, every 100 ms, the addons mapped since
// (`later-addons: <JSON>`). tests/scripts/start-modules.test.ts reads it.
"use strict";
const { readFileSync } = require("node:fs");

/** The `.node` files mapped into this process. */
const addons = () => [
  ...new Set(
    readFileSync("/proc/self/maps", "utf8")
      .split("\n")
      .map((l) => l.slice(l.indexOf("/")))
      .filter((f) => f.endsWith(".node")),
  ),
];

const write = process.stdout.write.bind(process.stdout);
let reported = false;
process.stdout.write = (chunk, ...rest) => {
  if (!reported && String(chunk).includes('"gateway ready"')) {
    reported = true;
    const builtins = process.moduleLoadList.filter((m) => m.startsWith("NativeModule ")).map((m) => m.slice("NativeModule ".length));
    process.stderr.write(`ready-modules: ${JSON.stringify({ builtins, files: Object.keys(require.cache), addons: addons() })}\n`);
    setInterval(() => process.stderr.write(`later-addons: ${JSON.stringify(addons())}\n`), 100).unref();
  }
  return write(chunk, ...rest);
};
