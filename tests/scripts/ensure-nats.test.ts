/**
 * scripts/ensure-nats.mjs on a machine without nats-server: `--print` must put the path, and only
 * the path, on stdout, even though apt-get talks on stdout while it installs (issue 11, finding
 * 14: the tests spawned a binary named "Reading package lists... /usr/sbin/nats-server").
 *
 * apt-get and apt-cache are stand-ins on PATH that talk like the real ones and "install" a
 * nats-server script; the script under test runs for real.
 */
import { execFileSync, spawn } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { PACKAGE_ROOT } from "../../host/src/paths.js";

const SCRIPT = join(PACKAGE_ROOT, "scripts", "ensure-nats.mjs");
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const isRootDebian = typeof process.getuid === "function" && process.getuid() === 0 && existsSync("/etc/debian_version");

/** A PATH with chatty apt-get/apt-cache stand-ins that install `<sbin>/nats-server` and count installs. */
function fakeApt(): { bin: string; sbin: string; installs: string } {
  const root = mkdtempSync(join(tmpdir(), "ensure-nats-"));
  dirs.push(root);
  const bin = join(root, "bin");
  const sbin = join(root, "sbin");
  const installs = join(root, "installs.log");
  execFileSync("mkdir", ["-p", bin, sbin]);
  const script = (body: string) => `#!/bin/sh\n${body}\n`;
  writeFileSync(
    join(bin, "apt-get"),
    script(`echo "Reading package lists..."
case "$*" in
  *install*) sleep 0.3; echo "Setting up nats-server (2.9.10) ..."; echo x >> "${installs}"
    printf '#!/bin/sh\\necho "nats-server: v2.9.10"\\n' > "${sbin}/nats-server"; chmod +x "${sbin}/nats-server";;
  *) echo "apt-get 2.6.1";;
esac`),
  );
  writeFileSync(join(bin, "apt-cache"), script(`echo "nats-server:"; echo "  Candidate: 2.9.10-1"`));
  chmodSync(join(bin, "apt-get"), 0o755);
  chmodSync(join(bin, "apt-cache"), 0o755);
  return { bin, sbin, installs };
}

function run(env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [SCRIPT, "--print"], { env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (b) => (stdout += b));
    child.stderr.on("data", (b) => (stderr += b));
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

describe.runIf(isRootDebian)("ensure-nats --print on a machine without nats-server", () => {
  it("prints only the installed path on stdout; apt-get's chatter goes to stderr", async () => {
    const { bin, sbin } = fakeApt();
    const env = { PATH: `${bin}:/usr/bin:/bin`, ENSURE_NATS_DIRS: sbin };
    const r = await run(env);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${join(sbin, "nats-server")}\n`);
    expect(r.stderr).toContain("Reading package lists...");
  });

  it("two callers at once end with one path each", async () => {
    const { bin, sbin, installs } = fakeApt();
    const env = { PATH: `${bin}:/usr/bin:/bin`, ENSURE_NATS_DIRS: sbin };
    const [a, b] = await Promise.all([run(env), run(env)]);
    expect([a.code, b.code]).toEqual([0, 0]);
    expect(a.stdout.trim()).toBe(join(sbin, "nats-server"));
    expect(b.stdout.trim()).toBe(join(sbin, "nats-server"));
    expect(readFileSync(installs, "utf8").length).toBeGreaterThan(0);
  });
});

describe("ensure-nats with nats-server present", () => {
  it("prints the path without installing anything", async () => {
    const { bin, sbin, installs } = fakeApt();
    writeFileSync(join(sbin, "nats-server"), "#!/bin/sh\necho v2.9.10\n");
    chmodSync(join(sbin, "nats-server"), 0o755);
    const r = await run({ PATH: `${bin}:/usr/bin:/bin`, ENSURE_NATS_DIRS: sbin });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${join(sbin, "nats-server")}\n`);
    expect(existsSync(installs)).toBe(false);
  });
});
