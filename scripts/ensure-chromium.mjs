#!/usr/bin/env node
// Makes sure Debian's `chromium` is available for the Control UI tests (Playwright drives it
// through `executablePath`; no browser is ever downloaded).
//
//   node scripts/ensure-chromium.mjs          # find it, or install it (root on Debian), or fail
//   node scripts/ensure-chromium.mjs --print  # same, then print the absolute path on stdout
//
// Search order: $CHROMIUM (an explicit path), then `chromium` / `chromium-browser` on PATH and in
// /usr/bin. When missing and we are root on Debian, runs `apt-get install -y chromium` (after
// `apt-get update` when apt does not know the package), waiting for dpkg's lock like
// ensure-nats.mjs. Otherwise throws with the command to run. Importable: `ensureChromium()`.
import { execFileSync, spawnSync } from "node:child_process";
import { accessSync, constants, existsSync } from "node:fs";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";

const NAMES = ["chromium", "chromium-browser"];
const INSTALL_CMD = "apt-get update && apt-get install -y --no-install-recommends chromium";

function isExecutable(path) {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The absolute path of Debian's chromium, or undefined. */
export function findChromium() {
  const explicit = process.env.CHROMIUM;
  if (explicit && isExecutable(explicit)) return explicit;
  const dirs = [...(process.env.PATH ?? "").split(delimiter).filter(Boolean), "/usr/bin"];
  for (const dir of dirs) for (const name of NAMES) if (isExecutable(join(dir, name))) return join(dir, name);
  return undefined;
}

function aptKnows(pkg) {
  const r = spawnSync("apt-cache", ["policy", pkg], { encoding: "utf8" });
  return r.status === 0 && /Candidate:\s*(?!\(none\))\S+/.test(r.stdout);
}

/**
 * Returns the path of chromium, installing Debian's package with apt when possible.
 * @throws Error with the command to run when it is missing and cannot be installed here
 */
export function ensureChromium({ quiet = false } = {}) {
  const found = findChromium();
  if (found) return found;
  const log = (msg) => {
    if (!quiet) process.stderr.write(`ensure-chromium: ${msg}\n`);
  };
  const debian = existsSync("/etc/debian_version") && spawnSync("apt-get", ["--version"], { stdio: "ignore" }).status === 0;
  if (!debian) throw new Error("chromium was not found and this is not a Debian system: install Chromium and set CHROMIUM=/path/to/chromium");
  if (!(typeof process.getuid === "function" && process.getuid() === 0))
    throw new Error(`chromium was not found. Install it with:\n  sudo sh -c '${INSTALL_CMD}'`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const stdio = quiet ? "ignore" : ["ignore", 2, 2];
  const lockWait = ["-o", "DPkg::Lock::Timeout=600"];
  if (!aptKnows("chromium")) {
    log("running apt-get update");
    execFileSync("apt-get", [...lockWait, "update"], { stdio, env });
  }
  log("running apt-get install -y chromium");
  if (!findChromium()) execFileSync("apt-get", [...lockWait, "install", "-y", "--no-install-recommends", "chromium"], { stdio, env });
  const installed = findChromium();
  if (!installed) throw new Error(`apt-get installed chromium but it is not on PATH; run: ${INSTALL_CMD}`);
  return installed;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    const path = ensureChromium();
    if (process.argv.includes("--print")) process.stdout.write(`${path}\n`);
    else process.stderr.write(`ensure-chromium: ${path}\n`);
  } catch (err) {
    process.stderr.write(`ensure-chromium: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
}
