/**
 * Child-process fixtures: a test that kills or restarts a process holding a store runs a
 * fixture (TypeScript under `tests/**\/fixtures/`) as a real child process, bundled with esbuild.
 */
import { rmSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { build } from "esbuild";

const repo = resolve(import.meta.dirname, "../..");

/**
 * Bundles the fixture `entry` (a `.ts` path) to `<repo>/.exoclaw-test-<tag>-<pid>/<name>.mjs`:
 * inside the repository so its npm packages load from node_modules, as in the host bundle
 * (`.gitignore` has `.exoclaw-test-*`).
 * @returns the bundle's path, and a cleanup that removes its directory
 * @throws esbuild's error when the fixture does not build
 */
export async function bundleFixture(entry: string, tag: string): Promise<{ child: string; cleanup(): void }> {
  const dir = join(repo, `.exoclaw-test-${tag}-${process.pid}`);
  const child = join(dir, `${basename(entry, ".ts")}.mjs`);
  await build({
    entryPoints: [entry],
    outfile: child,
    bundle: true,
    platform: "node",
    format: "esm",
    packages: "external",
    target: "node20",
    logLevel: "error",
  });
  return { child, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
