/**
 * scripts/lib/debian-package.mjs, the one finder/installer behind ensure-nats.mjs and
 * ensure-chromium.mjs: an explicit path in the named environment variable wins; several names are
 * tried in order in each directory; a missing program is installed with apt-get (stand-ins on
 * PATH that talk like the real ones) and found under whichever of its names the package put there.
 */
import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ensureDebianPackage, findProgram } from "../../scripts/lib/debian-package.mjs";

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const isRootDebian = typeof process.getuid === "function" && process.getuid() === 0 && existsSync("/etc/debian_version");

function dir(): string {
  const d = mkdtempSync(join(tmpdir(), "debian-package-"));
  dirs.push(d);
  return d;
}

function executable(path: string): string {
  writeFileSync(path, "#!/bin/sh\necho ok\n");
  chmodSync(path, 0o755);
  return path;
}

describe("findProgram", () => {
  it("tries each name in each directory in order; the environment variable's path comes first", () => {
    const [a, b] = [dir(), dir()];
    const second = executable(join(a, "chromium-browser"));
    executable(join(b, "chromium"));
    expect(findProgram(["chromium", "chromium-browser"], { dirs: [a, b] })).toBe(second);
    const explicit = executable(join(dir(), "my-chromium"));
    process.env.TEST_DEBIAN_PACKAGE_BIN = explicit;
    try {
      expect(findProgram(["chromium"], { envVar: "TEST_DEBIAN_PACKAGE_BIN", dirs: [a, b] })).toBe(explicit);
    } finally {
      delete process.env.TEST_DEBIAN_PACKAGE_BIN;
    }
    expect(findProgram("nothing-here", { dirs: [a, b] })).toBeUndefined();
  });
});

describe.runIf(isRootDebian)("ensureDebianPackage", () => {
  it("installs the package with apt-get when missing and returns the path under its second name", () => {
    const root = dir();
    const [bin, usr] = [join(root, "bin"), join(root, "usr")];
    execFileSync("mkdir", ["-p", bin, usr]);
    const calls = join(root, "calls.log");
    writeFileSync(
      join(bin, "apt-get"),
      `#!/bin/sh\necho "$*" >> "${calls}"\necho "Reading package lists..."\ncase "$*" in *install*) printf '#!/bin/sh\\n' > "${usr}/fake-browser"; chmod +x "${usr}/fake-browser";; esac\n`,
    );
    writeFileSync(join(bin, "apt-cache"), `#!/bin/sh\necho "fake:"; echo "  Candidate: (none)"\n`);
    chmodSync(join(bin, "apt-get"), 0o755);
    chmodSync(join(bin, "apt-cache"), 0o755);
    const path = process.env.PATH;
    process.env.PATH = `${bin}:/usr/bin:/bin`;
    try {
      expect(ensureDebianPackage("fake-pkg", ["fake", "fake-browser"], { dirs: [usr], quiet: true })).toBe(join(usr, "fake-browser"));
    } finally {
      process.env.PATH = path;
    }
    // apt did not know the package: `update` first, then the install without recommends.
    const lines = readFileSync(calls, "utf8")
      .trim()
      .split("\n")
      .filter((l) => l !== "--version");
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/ update$/);
    expect(lines[1]).toMatch(/install -y --no-install-recommends fake-pkg$/);
  });
});
