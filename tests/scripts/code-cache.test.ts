/**
 * The host bundle and its V8 code cache (scripts/bundle-host.mjs, bin/exoclaw.js; issue 13,
 * ready time): the bundle is ASCII (read as latin1) with every dynamic `import(` routed through
 * bin/exoclaw.js (a script from the code cache has no import() callback on Node 20); the cache is
 * used when it matches, and a cache V8 rejects (corrupt, another build) never stops the command:
 * it is compiled as usual and the cache written again. The commands run in a scratch copy of
 * bin/ and dist/ (node_modules linked), so the package's own cache is not touched. The provider
 * SDK bundles (dist/providers/, loaded through bin/load-bundle.js) give what import() gives, and
 * the build wrote their caches for the V8 flags the gateway runs with; the gateway's use of them
 * is checked end to end in tests/e2e/provider-bundles.test.ts.
 */
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { COMPACT_HEAP_FLAGS } from "../../host/src/cli/heap.js";
import { PACKAGE_ROOT } from "../../host/src/paths.js";
import { VERSION } from "../../host/src/version.js";

const scratch = mkdtempSync(join(tmpdir(), "exoclaw-code-cache-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
mkdirSync(join(scratch, "bin"));
mkdirSync(join(scratch, "dist"));
copyFileSync(join(PACKAGE_ROOT, "package.json"), join(scratch, "package.json"));
copyFileSync(join(PACKAGE_ROOT, "bin/exoclaw.js"), join(scratch, "bin/exoclaw.js"));
copyFileSync(join(PACKAGE_ROOT, "bin/load-bundle.js"), join(scratch, "bin/load-bundle.js"));
// bin/ is CommonJS by its own package.json (the root one says "module").
copyFileSync(join(PACKAGE_ROOT, "bin/package.json"), join(scratch, "bin/package.json"));
copyFileSync(join(PACKAGE_ROOT, "dist/exoclaw.cjs"), join(scratch, "dist/exoclaw.cjs"));
symlinkSync(join(PACKAGE_ROOT, "node_modules"), join(scratch, "node_modules"));
const cacheFile = join(scratch, "dist/exoclaw.cjs.cache");

/** `exoclaw --version` in the scratch copy; its stdout. */
const version = (env: NodeJS.ProcessEnv = {}): string =>
  execFileSync(process.execPath, [join(scratch, "bin/exoclaw.js"), "--version"], { encoding: "utf8", env: { ...process.env, ...env }, timeout: 60_000 });

describe("host bundle", () => {
  it("is ASCII and has no import( of its own left", () => {
    const code = readFileSync(join(PACKAGE_ROOT, "dist/exoclaw.cjs"), "latin1");
    expect(code.match(/[^\x00-\x7f]/)).toBeNull();
    expect(code.match(/(?<![\w$.])import\(/)).toBeNull();
    // The provider SDKs are still imported on demand, through the function bin/exoclaw.js passes in.
    expect(code).toContain('$xoimp("@anthropic-ai/sdk")');
  });

  it("leaves out what a default start does not need: zod's locales, the MCP SDK", () => {
    const code = readFileSync(join(PACKAGE_ROOT, "dist/exoclaw.cjs"), "latin1");
    // The bundle is minified (no module path comments): its source map lists the modules in it.
    const sources = (JSON.parse(readFileSync(join(PACKAGE_ROOT, "dist/exoclaw.cjs.map"), "utf8")) as { sources: string[] }).sources;
    // `import { z } from "zod"` anywhere in host/src brings all 60 locales back (~590 KB); use `import * as z from "zod"`.
    expect(sources.some((s) => s.endsWith("node_modules/zod/v4/locales/en.js"))).toBe(true);
    expect(sources.some((s) => s.endsWith("node_modules/zod/v4/locales/ar.js"))).toBe(false);
    // The MCP SDK (and its own copy of zod) loads on the first MCP use only, never at start.
    expect(code).not.toMatch(/require\("@modelcontextprotocol\/sdk/);
  });
});

describe("V8 code cache", () => {
  it("is written by the first run and used as is by the next", () => {
    expect(version().trim()).toBe(VERSION);
    const written = readFileSync(cacheFile);
    expect(written.length).toBeGreaterThan(100_000);
    const mtime = statSync(cacheFile).mtimeMs;
    expect(version().trim()).toBe(VERSION);
    // A rejected cache would have been written again.
    expect(statSync(cacheFile).mtimeMs).toBe(mtime);
    expect(readFileSync(cacheFile).equals(written)).toBe(true);
  }, 120_000);

  it("a corrupt cache is rejected, the command runs, and the cache is written again", () => {
    writeFileSync(cacheFile, Buffer.alloc(4096, 7));
    expect(version().trim()).toBe(VERSION);
    const rewritten = readFileSync(cacheFile);
    expect(rewritten.length).toBeGreaterThan(100_000);
    expect(rewritten.equals(Buffer.alloc(4096, 7))).toBe(false);
  }, 120_000);

  it("EXOCLAW_CODE_CACHE=0 neither reads nor writes it", () => {
    rmSync(cacheFile, { force: true });
    expect(version({ EXOCLAW_CODE_CACHE: "0" }).trim()).toBe(VERSION);
    expect(() => statSync(cacheFile)).toThrow();
  }, 120_000);

  it("EXOCLAW_CODE_CACHE=train writes it again at exit with what the run compiled, and the next run uses it", () => {
    rmSync(cacheFile, { force: true });
    expect(version().trim()).toBe(VERSION);
    const topLevel = statSync(cacheFile).size;
    const help = (env: NodeJS.ProcessEnv = {}): string =>
      execFileSync(process.execPath, [join(scratch, "bin/exoclaw.js"), "--help"], { encoding: "utf8", env: { ...process.env, ...env }, timeout: 60_000 });
    expect(help({ EXOCLAW_CODE_CACHE: "train" })).toContain("gateway");
    const trained = readFileSync(cacheFile);
    // --help compiles what --version does not (commander's help, every command's definition).
    expect(trained.length).toBeGreaterThan(topLevel);
    const mtime = statSync(cacheFile).mtimeMs;
    expect(help()).toContain("gateway");
    expect(statSync(cacheFile).mtimeMs).toBe(mtime);
    expect(readFileSync(cacheFile).equals(trained)).toBe(true);
  }, 120_000);

  it("the build's cache holds a gateway's start-up compiled (scripts/host-cache.mjs), under the flags a start reads it with", () => {
    rmSync(cacheFile, { force: true });
    expect(version().trim()).toBe(VERSION);
    const topLevel = statSync(cacheFile).size;
    const built = readFileSync(join(PACKAGE_ROOT, "dist/exoclaw.cjs.cache"));
    // Measured 0.63 MB (top level) vs 1.15 MB (two training starts) on 2026-12-05.
    expect(built.length).toBeGreaterThan(topLevel * 1.3);
    writeFileSync(cacheFile, built);
    const mtime = statSync(cacheFile).mtimeMs;
    expect(version().trim()).toBe(VERSION);
    // Rejected (other V8 flags, another bundle), it would have been written again.
    expect(statSync(cacheFile).mtimeMs).toBe(mtime);
  }, 120_000);
});

const PROVIDERS = ["@anthropic-ai/sdk", "undici", "openai", "ollama", "@google/genai"];

/** Runs an ES module snippet in a fresh node (V8's default flags unless the snippet sets some) and parses its stdout as JSON. */
const nodeJson = (code: string): unknown =>
  JSON.parse(execFileSync(process.execPath, ["--input-type=module", "-e", code], { cwd: PACKAGE_ROOT, encoding: "utf8", timeout: 60_000 }));

describe("provider bundles (dist/providers/)", () => {
  it("are ASCII, have no import( of their own left, and one per package bin/load-bundle.js lists", () => {
    const listed = nodeJson(`import { PROVIDER_SPECIFIERS, providerBundleFile } from "./bin/load-bundle.js";
      console.log(JSON.stringify(PROVIDER_SPECIFIERS.map((s) => [s, providerBundleFile(s)])));`) as [string, string][];
    expect(listed.map(([s]) => s)).toEqual(PROVIDERS);
    for (const [, file] of listed) {
      const code = readFileSync(file, "latin1");
      expect(code.match(/[^\x00-\x7f]/)).toBeNull();
      expect(code.match(/(?<![\w$.])import\(/)).toBeNull();
    }
  });

  it("load() gives what import() of the package from node_modules gives: default and every named export", () => {
    const shapes = nodeJson(`import { PROVIDER_SPECIFIERS, providerBundleFile, runBundle } from "./bin/load-bundle.js";
      const out = {};
      for (const s of PROVIDER_SPECIFIERS) {
        const real = await import(s);
        const bundled = await runBundle(providerBundleFile(s), undefined, (x) => import(x)).exports.load();
        const kind = (v) => (typeof v === "function" ? "function:" + v.name : typeof v);
        out[s] = {
          missing: Object.keys(real).filter((k) => !(k in bundled)),
          differ: Object.keys(real).filter((k) => k in bundled && kind(real[k]) !== kind(bundled[k])),
          defaultKind: kind(bundled.default),
          named: Object.keys(real).length,
        };
      }
      console.log(JSON.stringify(out));`) as Record<string, { missing: string[]; differ: string[]; defaultKind: string; named: number }>;
    for (const s of PROVIDERS) {
      expect(shapes[s]!.missing, s).toEqual([]);
      expect(shapes[s]!.differ, s).toEqual([]);
      expect(shapes[s]!.named, s).toBeGreaterThan(1);
    }
    expect(shapes["@anthropic-ai/sdk"]!.defaultKind).toBe("function:Anthropic");
    expect(shapes.openai!.defaultKind).toBe("function:OpenAI");
    // A CommonJS package: import() gives its module.exports as default.
    expect(shapes.undici!.defaultKind).toBe("object");
  }, 120_000);

  it("have code caches from the build for V8's default flags and for the gateway's (compact heap)", () => {
    // The gateway sets COMPACT_HEAP_FLAGS at run time before it loads a provider; V8 rejects a
    // cache made under other flags, so the build (scripts/bundle-host.mjs) writes one for each.
    for (const flags of [[], COMPACT_HEAP_FLAGS]) {
      const files = nodeJson(`import { setFlagsFromString } from "node:v8";
        import { PROVIDER_SPECIFIERS, providerBundleFile, providerCacheFile } from "./bin/load-bundle.js";
        for (const f of ${JSON.stringify(flags)}) setFlagsFromString(f);
        console.log(JSON.stringify(PROVIDER_SPECIFIERS.map((s) => providerCacheFile(providerBundleFile(s)))));`) as string[];
      for (const file of files) expect(statSync(file).size, `${file} (flags ${flags.join(" ")})`).toBeGreaterThan(10_000);
    }
  }, 60_000);
});
