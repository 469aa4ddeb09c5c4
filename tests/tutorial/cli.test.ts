// The plugin author's commands on their failure paths, as the real CLI (dist bundle):
// `plugin new` refusals, `plugin build` compiler errors as file:line:column, and `plugin test`
// reporting broken plugins with exit code 1 (and JSON).
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fixture } from "../plugins/sandbox/support.js";
import { CLI, ROOT } from "../support/gateway.js";

const run = promisify(execFile);
let root = "";

async function exoclaw(args: string[], cwd = root): Promise<{ code: number; stdout: string; stderr: string }> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("EXOCLAW_")) env[k] = v;
  try {
    const r = await run(process.execPath, [CLI, ...args], { cwd, env: { ...env, EXOCLAW_STATE_DIR: path.join(root, "state") }, maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), "exoclaw-plugin-cli-"));
});
afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

describe("exoclaw plugin new", () => {
  it("refuses kind both with the reason, bad names, and non-empty directories", async () => {
    // --kind channel is scaffolded now: tests/cli/plugin-new-channel.test.ts.
    const both = await exoclaw(["plugin", "new", "chan", "--kind", "both"]);
    expect(both.code).toBe(1);
    expect(both.stderr).toMatch(/^exoclaw: kind "both" has no scaffold: generate a channel plugin \(--kind channel\)/);
    const bad = await exoclaw(["plugin", "new", "Bad Name"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('invalid plugin name "Bad Name"');
    expect((await exoclaw(["plugin", "new", "twice"])).code).toBe(0);
    const again = await exoclaw(["plugin", "new", "twice"]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/twice already exists and is not empty/);
  });

  it("links the SDK, compiler and CLI of this checkout, or uses registry versions with --registry", async () => {
    await exoclaw(["plugin", "new", "linked"]);
    const linked = JSON.parse(await readFile(path.join(root, "linked", "package.json"), "utf8"));
    expect(linked.devDependencies["@exoclaw/plugin-sdk"]).toBe(`file:${path.join(ROOT, "plugin-sdk")}`);
    expect(linked.scripts.build).toBe(`node ${JSON.stringify(path.join(ROOT, "bin", "exoclaw.js"))} plugin build`);
    await exoclaw(["plugin", "new", "published", "--registry"]);
    const published = JSON.parse(await readFile(path.join(root, "published", "package.json"), "utf8"));
    expect(published.devDependencies).toEqual({
      "@exoclaw/plugin-sdk": expect.stringMatching(/^\^\d/),
      assemblyscript: expect.stringMatching(/^\^0\.28/),
      exoclaw: expect.stringMatching(/^\^\d/),
    });
    expect(published.scripts).toEqual({
      build: "exoclaw plugin build",
      test: "exoclaw plugin build && exoclaw plugin test build/published.wasm --cases test/cases.json",
    });
  });
});

describe("exoclaw plugin build", () => {
  it("builds without npm install (the checkout's SDK and compiler), and reports compiler errors as file:line:column", async () => {
    const dir = path.join(root, "broken");
    expect((await exoclaw(["plugin", "new", "broken"])).code).toBe(0);
    const ok = await exoclaw(["plugin", "build", "broken"]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/^built broken 0\.1\.0 -> broken\/build\/broken\.wasm {2}\d+ bytes {2}sha256 [0-9a-f]{64} {2}\(\d+ ms\)\n$/);

    const src = path.join(dir, "assembly", "index.ts");
    const text = await readFile(src, "utf8");
    await writeFile(src, text.replace('return ToolResult.ok("Hello, " + name + "!");', 'const n: i32 = "one";\n  return ToolResult.ok(greeting);'));
    const r = await exoclaw(["plugin", "build"], dir);
    expect(r.code).toBe(1);
    const lines = r.stderr.split("\n");
    expect(lines[0]).toMatch(/^assembly\/index\.ts:\d+:18: error TS2322: Type '~lib\/string\/String' is not assignable to type 'i32'\.$/);
    expect(r.stderr).toMatch(/^assembly\/index\.ts:\d+:24: error TS2304: Cannot find name 'greeting'\.$/m);
    expect(r.stderr).toMatch(/│ return ToolResult\.ok\(greeting\);/);
    expect(lines.filter(Boolean).at(-1)).toBe("2 compile errors");
  });

  it("says what is missing", async () => {
    const r = await exoclaw(["plugin", "build", root]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("no plugin.toml here (create a project with `exoclaw plugin new <name>`)");
  });
});

describe("exoclaw plugin test", () => {
  it("fails a plugin that hangs, crashes and returns garbage, with each failure named", async () => {
    const file = path.join(root, "hostile.wasm");
    await writeFile(file, await fixture("hostile"));
    const r = await exoclaw(["plugin", "test", file, "--timeout", "200"]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^FAIL {2}calls {5}loop: .*\n {8}x valid input 1 \{\}: timeout: /m);
    expect(r.stdout).toMatch(/^FAIL {2}calls {5}trap: /m);
    expect(r.stdout).toMatch(/^FAIL {2}calls {5}bad_output: .*\n {8}x valid input 1 \{\}: output is not MessagePack/m);
    expect(r.stdout).toMatch(/^FAIL: \d+ of \d+ checks failed/m);

    const json = await exoclaw(["plugin", "test", file, "--timeout", "200", "--json"]);
    const report = JSON.parse(json.stdout);
    expect(report.ok).toBe(false);
    expect(report.checks.find((c: { check: string }) => c.check === "manifest")).toMatchObject({ ok: true });
  }, 60_000);

  it("fails a module without a manifest, and one whose schema is not valid JSON Schema", async () => {
    const raw = path.join(root, "raw.wasm");
    await writeFile(raw, Uint8Array.of(0, 0x61, 0x73, 0x6d, 1, 0, 0, 0));
    const r = await exoclaw(["plugin", "test", raw]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^FAIL {2}manifest {2}no "exoclaw\.manifest" custom section/m);

    const dir = path.join(root, "typo");
    await exoclaw(["plugin", "new", "typo"]);
    const toml = path.join(dir, "plugin.toml");
    await writeFile(toml, (await readFile(toml, "utf8")).replace('required = ["name"]', 'requierd = ["name"]'));
    expect((await exoclaw(["plugin", "build"], dir)).code).toBe(0);
    const t = await exoclaw(["plugin", "test", "build/typo.wasm"], dir);
    expect(t.code).toBe(1);
    expect(t.stdout).toMatch(
      /^FAIL {2}schema {4}typo: not a valid JSON Schema \(draft-07, strict mode: unknown keywords are errors\)\n {8}x strict mode: unknown keyword: "requierd"/m,
    );
  }, 60_000);

  it("passes the first-party tools, with and without their capabilities", async () => {
    for (const name of ["calculator", "json", "time", "memory", "http_fetch"]) {
      const file = path.join(ROOT, "build", "plugins", `${name}.wasm`);
      for (const extra of [[], ["--no-grants"]]) {
        const r = await exoclaw(["plugin", "test", file, ...extra]);
        expect(r.code, `${name} ${extra.join(" ")}\n${r.stdout}`).toBe(0);
      }
    }
  }, 120_000);
});
