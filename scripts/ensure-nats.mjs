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
// exact command to run. Importable: `findNatsServer()` and `ensureNatsServer()`.
import { execFileSync, spawnSync } from "node:child_process";
import { accessSync, constants, existsSync } from "node:fs";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";

const EXTRA_DIRS = ["/usr/sbin", "/usr/bin", "/usr/local/bin"];
const INSTALL_CMD = "apt-get update && apt-get install -y nats-server";

function isExecutable(path) {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The absolute path of `nats-server`, or undefined when none is found. */
export function findNatsServer() {
  const explicit = process.env.NATS_SERVER;
  if (explicit && isExecutable(explicit)) return explicit;
  const only = process.env.ENSURE_NATS_DIRS;
  const dirs = only ? only.split(delimiter).filter(Boolean) : [...(process.env.PATH ?? "").split(delimiter).filter(Boolean), ...EXTRA_DIRS];
  for (const dir of dirs) {
    const candidate = join(dir, "nats-server");
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

function isDebian() {
  if (!existsSync("/etc/debian_version")) return false;
  return spawnSync("apt-get", ["--version"], { stdio: "ignore" }).status === 0;
}

function aptKnows(pkg) {
  const r = spawnSync("apt-cache", ["policy", pkg], { encoding: "utf8" });
  return r.status === 0 && /Candidate:\s*(?!\(none\))\S+/.test(r.stdout);
}

/**
 * Returns the path of `nats-server`, installing it with apt when possible.
 * @throws Error with the command to run when it is missing and cannot be installed here.
 */
export function ensureNatsServer({ quiet = false } = {}) {
  const found = findNatsServer();
  if (found) return found;
  const log = (msg) => {
    if (!quiet) process.stderr.write(`ensure-nats: ${msg}\n`);
  };
  const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
  if (!isDebian()) {
    throw new Error(
      "nats-server was not found (PATH, /usr/sbin, /usr/bin) and this is not a Debian system. " +
        "Install nats-server 2.9+ (with JetStream) and put it on PATH, or set NATS_SERVER=/path/to/nats-server.",
    );
  }
  if (!isRoot) {
    throw new Error(`nats-server was not found. Install it with:\n  sudo sh -c '${INSTALL_CMD}'`);
  }
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  // stdout of apt-get goes to our stderr (fd 2): stdout is reserved for the path (--print).
  const stdio = quiet ? "ignore" : ["ignore", 2, 2];
  // Wait up to 5 minutes for another apt-get/dpkg (a parallel caller) instead of failing on its lock.
  const lockWait = ["-o", "DPkg::Lock::Timeout=300"];
  if (!aptKnows("nats-server")) {
    log("running apt-get update");
    execFileSync("apt-get", [...lockWait, "update"], { stdio, env });
  }
  log("running apt-get install -y nats-server");
  // A parallel caller may have installed it while we waited for the lock.
  if (!findNatsServer()) {
    execFileSync("apt-get", [...lockWait, "install", "-y", "--no-install-recommends", "nats-server"], { stdio, env });
  }
  const installed = findNatsServer();
  if (!installed) throw new Error(`apt-get installed nats-server but it is not on PATH; run: ${INSTALL_CMD}`);
  return installed;
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
