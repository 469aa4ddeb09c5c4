// Finds a program, or installs the Debian package that holds it, for tests and benchmarks that
// need a real binary (nats-server, chromium): CI is a fresh machine with only Node and npm, running
// as root, so `npm test` installs what it needs. scripts/ensure-nats.mjs and
// scripts/ensure-chromium.mjs are thin wrappers over it.
//
// apt-get's output goes to stderr (fd 2), never stdout: a caller printing the path (`--print`)
// prints it alone. Callers running at the same time (test workers) are serialized by dpkg's lock:
// apt-get waits for it (up to 10 minutes) instead of failing, and the binary is looked for again
// once the lock is ours (a parallel caller may have installed it meanwhile).
import { execFileSync, spawnSync } from "node:child_process";
import { accessSync, constants, existsSync } from "node:fs";
import { delimiter, join } from "node:path";

/** Where a program is looked for after PATH. */
const EXTRA_DIRS = ["/usr/sbin", "/usr/bin", "/usr/local/bin"];

function isExecutable(path) {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function asList(binary) {
  return typeof binary === "string" ? [binary] : [...binary];
}

/**
 * The absolute path of `binary` (or the first of several names), or undefined: `$envVar` when it
 * names an executable, then each directory of `dirs` (default: PATH, /usr/sbin, /usr/bin,
 * /usr/local/bin) with each name.
 * @param {string | readonly string[]} binary
 * @param {{ envVar?: string, dirs?: readonly string[] }} [options]
 * @returns {string | undefined}
 */
export function findProgram(binary, { envVar, dirs } = {}) {
  const explicit = envVar === undefined ? undefined : process.env[envVar];
  if (explicit && isExecutable(explicit)) return explicit;
  const where = dirs ?? [...(process.env.PATH ?? "").split(delimiter).filter(Boolean), ...EXTRA_DIRS];
  for (const dir of where) for (const name of asList(binary)) if (isExecutable(join(dir, name))) return join(dir, name);
  return undefined;
}

function isDebian() {
  return existsSync("/etc/debian_version") && spawnSync("apt-get", ["--version"], { stdio: "ignore" }).status === 0;
}

function aptKnows(pkg) {
  const r = spawnSync("apt-cache", ["policy", pkg], { encoding: "utf8" });
  return r.status === 0 && /Candidate:\s*(?!\(none\))\S+/.test(r.stdout);
}

/**
 * Returns the path of `binary` (see {@link findProgram}), installing Debian package `pkg` with
 * `apt-get install -y --no-install-recommends` when it is missing and this is Debian/Ubuntu as root
 * (`apt-get update` first when apt does not know the package).
 * @param {string} pkg the Debian package, e.g. "nats-server"
 * @param {string | readonly string[]} binary the program's name, or several names tried in order
 * @param {{ envVar?: string, dirs?: readonly string[], quiet?: boolean, what?: string, tag?: string }} [options]
 *   envVar: an explicit path checked first (and named in the errors); dirs: replaces the search
 *   path; quiet: no progress lines and apt-get's output dropped; what: how the errors name the
 *   program to install by hand (default `pkg`); tag: the progress lines' prefix (default `ensure-<pkg>`)
 * @returns {string} the absolute path
 * @throws Error naming the command to run when it is missing and cannot be installed here (not
 *   Debian, not root), or when apt-get fails or installs no such program
 */
export function ensureDebianPackage(pkg, binary, { envVar, dirs, quiet = false, what = pkg, tag = `ensure-${pkg}` } = {}) {
  const find = () => findProgram(binary, { envVar, dirs });
  const found = find();
  if (found) return found;
  const name = asList(binary)[0];
  const installCmd = `apt-get update && apt-get install -y --no-install-recommends ${pkg}`;
  const log = (msg) => {
    if (!quiet) process.stderr.write(`${tag}: ${msg}\n`);
  };
  if (!isDebian()) {
    throw new Error(
      `${name} was not found (PATH, /usr/sbin, /usr/bin) and this is not a Debian system. ` +
        `Install ${what} and put it on PATH${envVar ? `, or set ${envVar}=/path/to/${name}` : ""}.`,
    );
  }
  if (!(typeof process.getuid === "function" && process.getuid() === 0)) {
    throw new Error(`${name} was not found. Install it with:\n  sudo sh -c '${installCmd}'`);
  }
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const stdio = quiet ? "ignore" : ["ignore", 2, 2];
  const lockWait = ["-o", "DPkg::Lock::Timeout=600"];
  if (!aptKnows(pkg)) {
    log("running apt-get update");
    execFileSync("apt-get", [...lockWait, "update"], { stdio, env });
  }
  log(`running apt-get install -y ${pkg}`);
  if (!find()) execFileSync("apt-get", [...lockWait, "install", "-y", "--no-install-recommends", pkg], { stdio, env });
  const installed = find();
  if (!installed) throw new Error(`apt-get installed ${pkg} but ${name} is not on PATH; run: ${installCmd}`);
  return installed;
}
