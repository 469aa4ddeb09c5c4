import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The exoclaw package root: the nearest directory above this module whose package.json is
 * named `exoclaw`. Works from the TypeScript sources (tests) and from the bundle in `dist/`.
 * @throws Error if no such directory exists (a broken install)
 */
export const PACKAGE_ROOT: string = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, "package.json");
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, "utf8")) as { name?: string }).name === "exoclaw") return dir;
      } catch {
        // not ours; keep walking up
      }
    }
    const up = dirname(dir);
    if (up === dir) throw new Error(`exoclaw: cannot find the package root above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
})();

/** First-party plugins built by `npm install` (scripts/build-plugins.mjs). */
export const BUILTIN_PLUGINS_DIR = join(PACKAGE_ROOT, "build", "plugins");

/** The Control UI built by `npm install` (ui/, `vite build`), served at `/` (gateway/ui-static.ts). */
export const UI_DIST_DIR = join(PACKAGE_ROOT, "ui", "dist");
