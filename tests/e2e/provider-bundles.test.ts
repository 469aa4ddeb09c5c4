// The installed gateway's provider SDKs (docs/operations.md, "Start-up time and what ready means";
// scripts/bundle-host.mjs, bin/exoclaw.js): the host's `import("@anthropic-ai/sdk")` and
// `import("undici")` are served from the code-cached bundles in dist/providers/, never from the ES
// modules in node_modules (whose load cost the first answer ~370 ms), and a first turn runs
// through them against the provider emulator. A provider cache V8 rejects (here: garbage) never
// stops a turn; it is written again, and the next process uses that cache as is.
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PACKAGE_ROOT } from "../../host/src/paths.js";
import { startEmulator, type Emulator } from "../support/emulator/server.mjs";
import { RpcClient, startGateway } from "../support/gateway.js";

let emulator: Emulator;
const scratch = mkdtempSync(join(tmpdir(), "exoclaw-provider-bundles-"));
beforeAll(async () => {
  emulator = await startEmulator();
});
afterAll(async () => {
  await emulator?.close();
  rmSync(scratch, { recursive: true, force: true });
});

/** One chat.send on a fresh connection; the reply's text. */
async function firstTurn(url: string, content: string): Promise<string> {
  const client = await RpcClient.connect(url);
  try {
    return (await client.call("chat.send", { content })).response.msg.result.text as string;
  } finally {
    client.close();
  }
}

/**
 * A module for `node --import` that records, into the file named by EXOCLAW_TEST_MODULE_LOG, every
 * ES module the process resolves from node_modules/@anthropic-ai/sdk or node_modules/undici (a
 * resolve hook) and, at exit, every such CommonJS module in require's cache.
 */
function moduleRecorder(dir: string): string {
  const file = join(dir, "record-sdk-modules.mjs");
  const pattern = String.raw`/\/node_modules\/(@anthropic-ai\/sdk|undici)\//`;
  const hooks = `import { appendFileSync } from "node:fs";
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  if (${pattern}.test(r.url)) appendFileSync(process.env.EXOCLAW_TEST_MODULE_LOG, "esm " + r.url + "\\n");
  return r;
}`;
  writeFileSync(
    file,
    `import { appendFileSync } from "node:fs";
import { createRequire, register } from "node:module";
register("data:text/javascript," + encodeURIComponent(${JSON.stringify(hooks)}));
appendFileSync(process.env.EXOCLAW_TEST_MODULE_LOG, "recording\\n");
process.on("exit", () => {
  for (const k of Object.keys(createRequire(import.meta.url).cache)) if (${pattern}.test(k)) appendFileSync(process.env.EXOCLAW_TEST_MODULE_LOG, "cjs " + k + "\\n");
});
`,
  );
  return file;
}

describe("provider SDKs in the installed gateway", () => {
  it("come from dist/providers/, not node_modules, and the first turn runs through them", { timeout: 120_000 }, async () => {
    const log = join(scratch, "modules.log");
    // The build's caches (scripts/provider-caches.mjs) match the gateway's V8 flags: V8 accepts
    // them, so the gateway writes none (a rejected one would be rewritten at the first load).
    const providers = join(PACKAGE_ROOT, "dist/providers");
    const cacheTimes = () =>
      Object.fromEntries(readdirSync(providers).flatMap((f) => (f.endsWith(".cache") ? [[f, statSync(join(providers, f)).mtimeMs]] : [])));
    const before = cacheTimes();
    const gw = await startGateway({
      EXOCLAW_STORE: "memory",
      ANTHROPIC_API_KEY: "sk-test-bundles",
      ANTHROPIC_BASE_URL: emulator.url,
      EXOCLAW_TEST_MODULE_LOG: log,
      NODE_OPTIONS: `--import=${pathToFileURL(moduleRecorder(scratch)).href}`,
    });
    try {
      expect(await firstTurn(gw.url, "hello bundles")).toBe("You said: hello bundles");
      // A second provider call on the same classes: the SDK is evaluated once per process.
      expect(await firstTurn(gw.url, "hello again")).toBe("You said: hello again");
    } finally {
      await gw.stop();
    }
    const lines = readFileSync(log, "utf8").trim().split("\n");
    expect(lines[0]).toBe("recording");
    expect(lines.slice(1)).toEqual([]);
    expect(cacheTimes()).toEqual(before);
  });

  it("a corrupt provider cache is ignored, the turn answered, and the cache written again for the next start", { timeout: 120_000 }, async () => {
    // A scratch copy of bin/ and dist/ (node_modules linked): the package's own caches stay as they are.
    const root = join(scratch, "pkg");
    for (const d of ["bin", "dist/providers"]) mkdirSync(join(root, d), { recursive: true });
    copyFileSync(join(PACKAGE_ROOT, "package.json"), join(root, "package.json"));
    for (const f of ["bin/exoclaw.js", "bin/load-bundle.js", "bin/package.json", "dist/exoclaw.cjs", "dist/exoclaw.cjs.cache", "dist/sandbox-worker.mjs"]) {
      copyFileSync(join(PACKAGE_ROOT, f), join(root, f));
    }
    for (const f of readdirSync(join(PACKAGE_ROOT, "dist/providers"))) {
      if (!f.endsWith(".map")) copyFileSync(join(PACKAGE_ROOT, "dist/providers", f), join(root, "dist/providers", f));
    }
    symlinkSync(join(PACKAGE_ROOT, "node_modules"), join(root, "node_modules"));
    const garbage = Buffer.alloc(8192, 7);
    const caches = () => readdirSync(join(root, "dist/providers")).filter((f) => /^(anthropic-ai\+sdk|undici)\.cjs\..*\.cache$/.test(f));
    // The build writes two packages x (default flags, the gateway's); gateways run from this
    // package (other tests) may have added caches for other flag sets (bin/load-bundle.js, v8FlagsKey).
    expect(caches().length).toBeGreaterThanOrEqual(4);
    for (const f of caches()) writeFileSync(join(root, "dist/providers", f), garbage);
    const env = { EXOCLAW_STORE: "memory", ANTHROPIC_API_KEY: "sk-test-bundles", ANTHROPIC_BASE_URL: emulator.url };
    const cli = join(root, "bin/exoclaw.js");

    const first = await startGateway(env, [], cli);
    let rewritten: string[] = [];
    try {
      expect(await firstTurn(first.url, "through a bad cache")).toBe("You said: through a bad cache");
      // Written again as soon as the package loaded (bin/exoclaw.js), for the gateway's flags.
      const deadline = Date.now() + 30_000;
      while (rewritten.length < 2 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
        rewritten = caches().filter((f) => !readFileSync(join(root, "dist/providers", f)).equals(garbage));
      }
    } finally {
      await first.stop();
    }
    expect(rewritten.length).toBe(2);
    for (const f of rewritten) {
      expect(statSync(join(root, "dist/providers", f)).size).toBeGreaterThan(100_000);
      // Readable as the bundle is, although the gateway's umask is 077 (its state files are private).
      expect(statSync(join(root, "dist/providers", f)).mode & 0o777).toBe(0o644);
    }
    // No temporary file left behind (written atomically: a temporary file renamed over it).
    expect(readdirSync(join(root, "dist/providers")).filter((f) => f.endsWith(".tmp"))).toEqual([]);

    // The next start takes the rewritten cache as is: V8 accepts it, so nothing is written again.
    const before = rewritten.map((f) => statSync(join(root, "dist/providers", f)).mtimeMs);
    const second = await startGateway(env, [], cli);
    try {
      expect(await firstTurn(second.url, "through the new cache")).toBe("You said: through the new cache");
    } finally {
      await second.stop();
    }
    expect(rewritten.map((f) => statSync(join(root, "dist/providers", f)).mtimeMs)).toEqual(before);
  });
});
