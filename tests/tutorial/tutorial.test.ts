// The tutorial of docs/plugins.md, run for real: `exoclaw plugin new`, the files edited with the
// contents shown on that page, `npm install` + `npm test` in the new project (exoclaw plugin
// build + exoclaw plugin test), then the built plugin dropped into a running gateway's plugins
// directory, its capability granted and approved, and a chat turn (emulated model) using it.
import { execFile } from "node:child_process";
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEmulator, type Emulator } from "../support/emulator/server.mjs";
import { CLI, ROOT, RpcClient, startGateway, type GatewayHandle } from "../support/gateway.js";

const run = promisify(execFile);

/** The files the tutorial tells the reader to write, by path, from `<!-- tutorial-file: path -->` blocks. */
async function tutorialFiles(): Promise<Map<string, string>> {
  const doc = await readFile(path.join(ROOT, "docs", "plugins.md"), "utf8");
  const files = new Map<string, string>();
  const re = /<!-- tutorial-file: (\S+) -->\n```[a-z]*\n([^]*?)```/g;
  for (const m of doc.matchAll(re)) files.set(m[1]!, m[2]!);
  return files;
}

/** Runs a command; never rejects: exit code and output. */
async function sh(cmd: string, args: string[], cwd: string, env: Record<string, string> = {}): Promise<{ code: number; out: string }> {
  const clean: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^(EXOCLAW_|ANTHROPIC_|OPENAI_|OLLAMA_|npm_)/.test(k)) clean[k] = v;
  try {
    const r = await run(cmd, args, { cwd, env: { ...clean, ...env }, maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, out: r.stdout + r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: typeof e.code === "number" ? e.code : 1, out: `${e.stdout ?? ""}${e.stderr ?? ""}` };
  }
}

const exoclaw = (args: string[], cwd: string, env: Record<string, string> = {}) => sh(process.execPath, [CLI, ...args], cwd, env);

/** Polls until `check` returns a truthy value. */
async function until<T>(ms: number, check: () => Promise<T | null | undefined | false>, what: string): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() - t0 > ms) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

let root = "";
let emulator: Emulator | undefined;
let gateway: GatewayHandle | undefined;

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), "exoclaw-tutorial-"));
});
afterAll(async () => {
  await gateway?.stop();
  await emulator?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

describe("the plugin tutorial (docs/plugins.md)", () => {
  const project = () => path.join(root, "reverse");

  it("the page has every file the tutorial asks for", async () => {
    expect([...(await tutorialFiles()).keys()].sort()).toEqual(["assembly/index.ts", "exoclaw.toml", "plugin.toml", "test/cases.json"]);
  });

  it("1. plugin new scaffolds a project whose own test passes as generated", async () => {
    const made = await exoclaw(["plugin", "new", "reverse", "--dir", root], root);
    expect(made.out).toContain(`created ${project()}`);
    expect(made.code).toBe(0);
    const install = await sh("npm", ["install", "--offline", "--no-audit", "--no-fund"], project());
    expect(install.code, install.out).toBe(0);
    const test = await sh("npm", ["test"], project());
    expect(test.code, test.out).toBe(0);
    expect(test.out).toMatch(/^built reverse 0\.1\.0 -> build\/reverse\.wasm/m);
    expect(test.out).toMatch(/^PASS  cases     3 of 3 cases from test\/cases\.json passed$/m);
    expect(test.out).toMatch(/^PASS: all 10 checks/m);
  }, 120_000);

  it("2-4. the edited plugin builds and passes its conformance checks and cases", async () => {
    const files = await tutorialFiles();
    for (const f of ["plugin.toml", "assembly/index.ts", "test/cases.json"]) await writeFile(path.join(project(), f), files.get(f)!);
    const test = await sh("npm", ["test"], project());
    expect(test.code, test.out).toBe(0);
    expect(test.out).toMatch(/^requests: log {2}\(an operator grants them in exoclaw\.toml \[plugins\.grants\.reverse\]/m);
    for (const check of ["module", "manifest", "abi", "imports", "exports", "schema", "calls", "garbage", "cases", "timing"]) {
      expect(test.out).toMatch(new RegExp(`^PASS  ${check} `, "m"));
    }
    expect(test.out).toContain("PASS  manifest  reverse 0.1.0 (tool): 1 tool (reverse), requests log");
  }, 120_000);

  it("5-7. dropped into a running gateway, approved, and used in a chat turn", async () => {
    const files = await tutorialFiles();
    const plugins = path.join(root, "plugins");
    const state = path.join(root, "state");
    const config = path.join(root, "exoclaw.toml");
    await mkdir(plugins, { recursive: true });
    await writeFile(config, files.get("exoclaw.toml")!);
    emulator = await startEmulator();
    gateway = await startGateway({ ANTHROPIC_API_KEY: "sk-test", ANTHROPIC_BASE_URL: emulator.url, EXOCLAW_STATE_DIR: state }, [
      "--plugins-dir",
      plugins,
      "--config",
      config,
    ]);
    const client = await RpcClient.connect(gateway.url);
    const entry = async (): Promise<any> => ((await client.call("plugin.list")).response.msg.result as any[]).find((p) => p.name === "reverse");

    // 5. Drop it in: hot-loaded, serving, but without `log` until approved.
    const installed = path.join(plugins, "reverse.wasm");
    await copyFile(path.join(project(), "build", "reverse.wasm"), installed);
    const pending = await until(5_000, async () => ((await entry())?.status === "pending_approval" ? entry() : null), "reverse listed as pending_approval");
    expect(pending.capabilities).toEqual({ requested: { log: true }, granted: {}, pending: { log: true } });
    expect(pending.tools).toEqual(["reverse"]);

    // 6. Approve.
    const approved = await exoclaw(["plugin", "approve", installed, "--config", config], root, { EXOCLAW_STATE_DIR: state });
    expect(approved.code, approved.out).toBe(0);
    expect(approved.out).toMatch(/^approved reverse sha256 [0-9a-f]{64}: log$/m);
    const loaded = await until(5_000, async () => ((await entry())?.status === "loaded" ? entry() : null), "reverse loaded with log granted");
    expect(loaded.capabilities.granted).toEqual({ log: true });

    // 7. A chat turn in which the model calls the tool.
    const { response, events } = await client.call("chat.send", { content: 'use:reverse {"text":"hello, world"}' });
    client.close();
    expect(response.msg.error).toBeUndefined();
    const params = events.map((e) => e.msg.params);
    expect(params.find((p) => p.type === "tool_use")?.data).toMatchObject({ name: "reverse", input: { text: "hello, world" } });
    expect(params.find((p) => p.type === "tool_result")?.data).toMatchObject({ content: "dlrow ,olleh", isError: false });
    expect(response.msg.result.text).toBe("The answer is dlrow ,olleh.");
    // The tool sent the model the plugin's own text, and its log line reached the gateway log.
    expect(JSON.stringify(emulator.requests.at(-1)!.body.messages)).toContain("dlrow ,olleh");
    await until(2_000, async () => gateway!.logs.find((l) => l["plugin"] === "reverse" && l["msg"] === "reversing 12 characters"), "the plugin's log line");
  }, 60_000);
});
