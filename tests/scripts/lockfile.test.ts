/**
 * The committed package-lock.json is what `npm install` writes for package.json (issue 11,
 * finding 16: a lockfile missing optional platform entries was rewritten by every install, so a
 * fresh clone's `npm install` left the tree dirty). npm itself recomputes the lockfile in a
 * scratch copy (`--package-lock-only`: no node_modules, no scripts); it must come out unchanged.
 */
import { execFileSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { PACKAGE_ROOT } from "../../host/src/paths.js";

const scratch = mkdtempSync(join(tmpdir(), "lockfile-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

it("npm install --package-lock-only leaves the committed lockfile byte for byte", () => {
  for (const f of ["package.json", "package-lock.json"]) cpSync(join(PACKAGE_ROOT, f), join(scratch, f));
  // Every workspace's manifest (plugin-sdk, ui): npm links them into the lockfile.
  const { workspaces } = JSON.parse(readFileSync(join(PACKAGE_ROOT, "package.json"), "utf8")) as { workspaces: string[] };
  for (const w of workspaces) cpSync(join(PACKAGE_ROOT, w, "package.json"), join(scratch, w, "package.json"));
  const npm = process.platform === "win32" ? "npm.cmd" : "npm";
  execFileSync(npm, ["install", "--package-lock-only", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline"], {
    cwd: scratch,
    stdio: "pipe",
  });
  const committed = readFileSync(join(PACKAGE_ROOT, "package-lock.json"), "utf8");
  const recomputed = readFileSync(join(scratch, "package-lock.json"), "utf8");
  expect(recomputed).toBe(committed);
}, 120_000);
