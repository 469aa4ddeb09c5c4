// `exoclaw plugin pack|inspect|approve|list` run as the real CLI (dist bundle), on hand-written
// WAT plugins compiled with wabt; the packed module is then loaded and called.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadPlugins } from "../../host/src/plugins/index.js";
import { embedManifest, manifestFromToml, readCustomSections, MANIFEST_SECTION } from "../../scripts/lib/manifest-section.mjs";
import { parse as parseToml } from "smol-toml";
import { CLI } from "../support/gateway.js";
import { captureLogger, compileWat, REPO_ROOT, tempDir } from "./support.js";

const run = promisify(execFile);

let dir = "";
let state = "";

/** Runs `exoclaw <args>`; never rejects: returns the exit code and output. */
async function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const clean: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^(EXOCLAW_|ANTHROPIC_|OPENAI_|OLLAMA_)/.test(k)) clean[k] = v;
  try {
    const r = await run(process.execPath, [CLI, ...args], { env: { ...clean, EXOCLAW_STATE_DIR: state, ...env }, cwd: dir });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const manifestOf = async (toml: string, extra: Record<string, unknown> = {}) => ({
  ...manifestFromToml(parseToml(await readFile(path.join(REPO_ROOT, toml), "utf8")) as Record<string, unknown>),
  ...extra,
});

beforeAll(async () => {
  dir = await tempDir();
  state = path.join(dir, "state");
  await writeFile(path.join(dir, "hello.raw.wasm"), await compileWat("plugins/fixtures/wat/hello.wat"));
  await writeFile(path.join(dir, "liar.raw.wasm"), await compileWat("plugins/fixtures/wat/liar.wat"));
}, 60_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("exoclaw plugin pack", () => {
  it("packs a hand-written WAT module that the host then loads and calls", async () => {
    const out = path.join(dir, "plugins", "hello.wasm");
    await rm(path.dirname(out), { recursive: true, force: true });
    await mkdir(path.dirname(out), { recursive: true });
    const r = await cli(["plugin", "pack", "hello.raw.wasm", "--manifest", path.join(REPO_ROOT, "plugins/fixtures/wat/hello.toml"), "-o", out]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^packed hello-wat 1\.0\.0 \(tool\) -> .*hello\.wasm {2}\d+ bytes {2}sha256 [0-9a-f]{64}\n$/);

    const logger = captureLogger();
    const host = await loadPlugins({ dirs: [path.dirname(out)], logger });
    try {
      expect(host.list()).toMatchObject([{ name: "hello-wat", version: "1.0.0", kind: "tool", tools: ["hello_wat"], status: "loaded" }]);
      expect(await host.callTool("hello_wat", { anything: [1, 2, 3] })).toEqual({ content: "hello from wat", isError: false });
      expect(await host.callTool("hello_wat", {})).toEqual({ content: "hello from wat", isError: false });
      expect(host.list()[0]).toMatchObject({ calls: 2, errors: 0 });
      expect(logger.warnings()).toEqual([]);
    } finally {
      await host.close();
    }
  });

  it("replaces an existing manifest section instead of adding a second one", async () => {
    const file = path.join(dir, "repack.wasm");
    const first = await cli(["plugin", "pack", "hello.raw.wasm", "-m", path.join(REPO_ROOT, "plugins/fixtures/wat/hello.toml"), "-o", file]);
    expect(first.code).toBe(0);
    const json = path.join(dir, "v2.json");
    await writeFile(json, JSON.stringify(await manifestOf("plugins/fixtures/wat/hello.toml", { version: "2.0.0" })));
    const second = await cli(["plugin", "pack", file, "-m", json]); // in place
    expect(second.code).toBe(0);
    const bytes = new Uint8Array(await readFile(file));
    const sections = readCustomSections(bytes, MANIFEST_SECTION);
    expect(sections).toHaveLength(1);
    expect(JSON.parse(Buffer.from(sections[0]!).toString("utf8"))).toMatchObject({ name: "hello-wat", version: "2.0.0", capabilities: {} });
  });

  it("refuses a module whose manifest claims a tool without a call export, writing nothing", async () => {
    const out = path.join(dir, "liar.wasm");
    const r = await cli(["plugin", "pack", "liar.raw.wasm", "-m", path.join(REPO_ROOT, "plugins/fixtures/wat/liar.toml"), "-o", out]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^exoclaw: .*liar\.wasm: the manifest declares kind "tool" but the module does not export a function "call" \(exports: memory memory, function run\)\n$/,
    );
    expect(existsSync(out)).toBe(false);
  });

  it("names the offending manifest field", async () => {
    const bad = path.join(dir, "bad.toml");
    await writeFile(
      bad,
      (await readFile(path.join(REPO_ROOT, "plugins/fixtures/wat/hello.toml"), "utf8")).replace(
        "[capabilities]",
        '[capabilities]\nnetwork = true\nclock = "yes"',
      ),
    );
    const r = await cli(["plugin", "pack", "hello.raw.wasm", "-m", bad, "-o", path.join(dir, "never.wasm")]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("manifest field capabilities");
    expect(r.stderr).toContain('unknown capability "network"');
    expect(r.stderr).toContain("capabilities.clock");
    const legacy = path.join(dir, "legacy.toml");
    await writeFile(legacy, (await readFile(path.join(REPO_ROOT, "plugins/fixtures/wat/hello.toml"), "utf8")).replace("[capabilities]", ""));
    await writeFile(legacy, `capabilities = ["net"]\n${await readFile(legacy, "utf8")}`);
    const r2 = await cli(["plugin", "pack", "hello.raw.wasm", "-m", legacy, "-o", path.join(dir, "never.wasm")]);
    expect(r2.code).toBe(1);
    expect(r2.stderr).toMatch(/manifest field capabilities: must be a table of capabilities/);
    expect(existsSync(path.join(dir, "never.wasm"))).toBe(false);
  });
});

describe("the host rejects a lying manifest at load", () => {
  it("lists it with status error and the reason, and offers none of its tools", async () => {
    const pluginDir = path.join(dir, "liars");
    await mkdir(pluginDir, { recursive: true });
    const raw = new Uint8Array(await readFile(path.join(dir, "liar.raw.wasm")));
    // Packed without validation, as a hostile or broken tool chain could.
    await writeFile(path.join(pluginDir, "liar.wasm"), embedManifest(raw, await manifestOf("plugins/fixtures/wat/liar.toml")));
    const logger = captureLogger();
    const host = await loadPlugins({ dirs: [pluginDir], logger });
    try {
      expect(host.tools()).toEqual([]);
      expect(host.list()).toEqual([
        expect.objectContaining({
          name: "liar-wat",
          status: "error",
          tools: [],
          error: 'the manifest declares kind "tool" but the module does not export a function "call" (exports: memory memory, function run)',
        }),
      ]);
      expect(logger.warnings().map((w) => w.fields["reason"])).toEqual([expect.stringMatching(/does not export a function "call"/)]);
      expect(await host.callTool("liar_tool", {})).toEqual({ content: "unknown tool 'liar_tool'", isError: true });
    } finally {
      await host.close();
    }
  });
});

describe("exoclaw plugin inspect / approve / list", () => {
  it("inspects manifest, sha256, imports and exports", async () => {
    const file = path.join(dir, "plugins", "hello.wasm");
    const r = await cli(["plugin", "inspect", file, "--json"]);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report).toMatchObject({
      path: file,
      sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
      manifest: { name: "hello-wat", kind: "tool", capabilities: {} },
      problem: null,
      exports: expect.arrayContaining([{ name: "call", kind: "function" }]),
    });
    expect(report.imports.map((i: { module: string; name: string }) => `${i.module}.${i.name}`).sort()).toEqual(
      ["alloc", "input_length", "input_load_u8", "output_set", "store_u8"].map((n) => `extism:host/env.${n}`),
    );
    const text = await cli(["plugin", "inspect", file]);
    expect(text.stdout).toContain("loadable: yes");
    const notWasm = path.join(dir, "text.wasm");
    await writeFile(notWasm, "hello");
    const bad = await cli(["plugin", "inspect", notWasm]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/text\.wasm: not a valid WebAssembly module/);
  });

  it("approves what is granted, binds it to the sha256, and lists pending capabilities", async () => {
    const pluginDir = path.join(dir, "caps");
    await mkdir(pluginDir, { recursive: true });
    const config = path.join(dir, "exoclaw.toml");
    await writeFile(config, `[plugins]\ndirs = ["${pluginDir}"]\n[plugins.grants.hello-wat]\nclock = true\nrandom = true\nconfig = { units = "metric" }\n`);
    const manifest = path.join(dir, "caps.json");
    const file = path.join(pluginDir, "hello.wasm");
    const pack = async (caps: Record<string, unknown>) => {
      await writeFile(manifest, JSON.stringify(await manifestOf("plugins/fixtures/wat/hello.toml", { capabilities: caps })));
      const r = await cli(["plugin", "pack", "hello.raw.wasm", "-m", manifest, "-o", file]);
      expect(r.stderr).toBe("");
    };
    const list = async () => {
      const r = await cli(["plugin", "list", "-c", config, "--json"]);
      expect(r.code).toBe(0);
      return (JSON.parse(r.stdout) as Array<Record<string, unknown>>).find((p) => p.path === file);
    };

    await pack({ clock: true, config: ["units"], log: true });
    expect(await list()).toMatchObject({ name: "hello-wat", status: "pending_approval", granted: "-", pending: "config(units) clock" });

    const approve = await cli(["plugin", "approve", file, "-c", config]);
    expect(approve.code).toBe(0);
    expect(approve.stdout).toMatch(/^approved hello-wat sha256 [0-9a-f]{64}: config\(units\) clock\n/);
    expect(approve.stdout).toContain("not granted in exoclaw.toml (add [plugins.grants.hello-wat] first): log");
    // The trust store is outside every plugin directory, owner-only.
    const storeFile = path.join(state, "trust", "approvals.json");
    expect(approve.stdout).toContain(`recorded in ${storeFile}`);
    expect((await stat(storeFile)).mode & 0o777).toBe(0o600);
    expect((await stat(path.dirname(storeFile))).mode & 0o777).toBe(0o700);
    const store = JSON.parse(await readFile(storeFile, "utf8"));
    expect(store).toMatchObject({
      version: 1,
      approvals: [{ name: "hello-wat", approved: { clock: true, config: ["units"] }, at: expect.any(String), path: file }],
    });
    expect(JSON.stringify(store)).not.toContain("metric"); // names only, never values
    expect(await list()).toMatchObject({ status: "loaded", granted: "config(units) clock", pending: "-" });

    // A new module under the same name: nothing until approved, even what the old one had.
    await pack({ clock: true, random: true });
    expect(await list()).toMatchObject({
      status: "pending_approval",
      granted: "-",
      pending: "clock random",
      error: expect.stringMatching(/^not approved: plugin "hello-wat" was approved for sha256 [0-9a-f]{64} \(.*hello\.wasm\)/),
    });

    const table = await cli(["plugin", "list", "-c", config]);
    expect(table.stdout).toMatch(/^NAME\s+VERSION\s+KIND\s+STATUS\s+SHA256\s+GRANTED\s+PENDING\s+PATH\n/);
    expect(table.stdout).toMatch(/hello-wat\s+1\.0\.0\s+tool\s+pending_approval\s+[0-9a-f]{12}\s+-\s+clock random\s+/);
    expect(table.stdout).toContain("exoclaw plugin approve <path>");

    // Re-approval is one command and says how the requests compare with the approved version.
    const again = await cli(["plugin", "approve", file, "-c", config]);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/^approved hello-wat sha256 [0-9a-f]{64}: clock random\n/);
    expect(again.stdout).toMatch(/replaces the approval of sha256 [0-9a-f]{64} \(.*hello\.wasm\), /);
    expect(again.stdout).toContain("compared with the approved version: same: clock; added: random; removed: config(units)");
    expect(await list()).toMatchObject({ status: "loaded", granted: "clock random", pending: "-" });

    // The same requests again (a rebuilt module): said in so many words.
    await writeFile(
      manifest,
      JSON.stringify(await manifestOf("plugins/fixtures/wat/hello.toml", { capabilities: { clock: true, random: true }, description: "rebuilt" })),
    );
    expect((await cli(["plugin", "pack", "hello.raw.wasm", "-m", manifest, "-o", file])).code).toBe(0);
    const same = await cli(["plugin", "approve", file, "-c", config]);
    expect(same.stdout).toContain("same requests as the approved version: clock random");
  });

  it("refuses a corrupt approvals file, naming it and the fix", async () => {
    const own = path.join(dir, "corrupt-state");
    await mkdir(path.join(own, "trust"), { recursive: true });
    await writeFile(path.join(own, "trust", "approvals.json"), '{"version": 1, "approvals": [');
    const r = await cli(["plugin", "approve", path.join(dir, "plugins", "hello.wasm")], { EXOCLAW_STATE_DIR: own });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${path.join(own, "trust", "approvals.json")}: not a valid approvals file`);
    expect(r.stderr).toContain("delete it and approve each plugin again");
  });
});
