#!/usr/bin/env node
// Makes sure a `nats-server` binary (with JetStream) is available for the bus tests.
//
//   node scripts/ensure-nats.mjs          # find it, or install it (root on Debian), or fail
//   node scripts/ensure-nats.mjs --print  # same, then print the absolute path on stdout
//
// Only the path ever goes to stdout: apt-get's own output is sent to stderr, so a caller reading
// stdout (`--print`) gets a path and nothing else. Callers that may run at the same time (test
// workers) are serialized by dpkg's lock: apt-get waits for it instead of failing.
//
// Search order: $NATS_SERVER (an explicit path), PATH, /usr/sbin, /usr/bin, /usr/local/bin
// ($ENSURE_NATS_DIRS, colon-separated, replaces PATH and those three: for tests and odd layouts).
// When it is missing and we are root on Debian/Ubuntu, runs `apt-get install -y nats-server`
// (with `apt-get update` first when the package is unknown to apt). Otherwise exits 1 with the
// exact command to run. Importable: `findNatsServer()` and `ensureNatsServer()`. The finding and
// installing is scripts/lib/debian-package.mjs's (shared with ensure-chromium.mjs).
import { spawnSync } from "node:child_process";
import { delimiter } from "node:path";
import { fileURLToPath } from "node:url";
import { ensureDebianPackage, findProgram } from "./lib/debian-package.mjs";

/** Where to look: $ENSURE_NATS_DIRS (colon-separated) when set, else the default search path. */
function search() {
  const only = process.env.ENSURE_NATS_DIRS;
  return { envVar: "NATS_SERVER", ...(only ? { dirs: only.split(delimiter).filter(Boolean) } : {}) };
}

/** The absolute path of `nats-server`, or undefined when none is found. */
export function findNatsServer() {
  return findProgram("nats-server", search());
}

/**
 * Returns the path of `nats-server`, installing it with apt when possible.
 * @throws Error with the command to run when it is missing and cannot be installed here.
 */
export function ensureNatsServer({ quiet = false } = {}) {
  return ensureDebianPackage("nats-server", "nats-server", { ...search(), quiet, what: "nats-server 2.9+ (with JetStream)", tag: "ensure-nats" });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    const path = ensureNatsServer();
    const v = spawnSync(path, ["--version"], { encoding: "utf8" });
    if (process.argv.includes("--print")) process.stdout.write(`${path}\n`);
    else process.stderr.write(`ensure-nats: ${path} (${(v.stdout || v.stderr || "").trim()})\n`);
  } catch (err) {
    process.stderr.write(`ensure-nats: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
}
