import { readFileSync } from "node:fs";

/**
 * The exoclaw package version, read once from the package root's package.json.
 * Works from both `host/src/version.ts` (tests) and `dist/version.js` (built).
 */
export const VERSION: string = (() => {
  for (const rel of ["../package.json", "../../package.json"]) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), "utf8")) as { name?: string; version?: string };
      if (pkg.name === "exoclaw" && pkg.version) return pkg.version;
    } catch {
      // try the next candidate
    }
  }
  return "0.0.0";
})();
