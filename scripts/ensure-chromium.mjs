#!/usr/bin/env node
// Makes sure Debian's `chromium` is available for the Control UI tests (Playwright drives it
// through `executablePath`; no browser is ever downloaded).
//
//   node scripts/ensure-chromium.mjs          # find it, or install it (root on Debian), or fail
//   node scripts/ensure-chromium.mjs --print  # same, then print the absolute path on stdout
//
// Search order: $CHROMIUM (an explicit path), then `chromium` / `chromium-browser` on PATH and in
// /usr/sbin, /usr/bin, /usr/local/bin. When missing and we are root on Debian, runs `apt-get install -y chromium` (after
// `apt-get update` when apt does not know the package), waiting for dpkg's lock like
// ensure-nats.mjs (both are scripts/lib/debian-package.mjs). Otherwise throws with the command to
// run. Importable: `findChromium()` and `ensureChromium()`.
import { fileURLToPath } from "node:url";
import { ensureDebianPackage, findProgram } from "./lib/debian-package.mjs";

const NAMES = ["chromium", "chromium-browser"];

/** The absolute path of Debian's chromium, or undefined. */
export function findChromium() {
  return findProgram(NAMES, { envVar: "CHROMIUM" });
}

/**
 * Returns the path of chromium, installing Debian's package with apt when possible.
 * @throws Error with the command to run when it is missing and cannot be installed here
 */
export function ensureChromium({ quiet = false } = {}) {
  return ensureDebianPackage("chromium", NAMES, { envVar: "CHROMIUM", quiet, what: "Chromium" });
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
