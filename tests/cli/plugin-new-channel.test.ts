// `exoclaw plugin new --kind channel` (real CLI, dist bundle): the scaffold builds with
// `exoclaw plugin build`, passes `exoclaw plugin test` (static checks for channel plugins), and
// works as generated: its `parse` checks the signature through the host and its `send` reaches a
// local platform with the token substituted.
import { execFile } from "node:child_process";
import { createHmac } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { Packr, Unpackr } from "msgpackr";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ParseResult, SendReceipt } from "../../host/src/channels/types.js";
import { DEFAULT_LIMITS } from "../../host/src/plugins/capabilities.js";
import { createHostServices, createSandboxPool, type CallOutcome, type SandboxPool } from "../../host/src/plugins/sandbox/index.js";
import { buildPlugin } from "../../scripts/build-plugins.mjs";
import { captureLogger } from "../plugins/sandbox/support.js";
import { CLI } from "../support/gateway.js";

const run = promisify(execFile);
const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });
let root = "";
let pool: SandboxPool | null = null;
let server: Server | null = null;

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
  root = await mkdtemp(path.join(tmpdir(), "exoclaw-channel-new-"));
});
afterAll(async () => {
  await pool?.close();
  server?.closeAllConnections();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  if (root) await rm(root, { recursive: true, force: true });
});

const out = <T>(r: CallOutcome): T => {
  if (!r.ok) throw new Error(`call failed: ${r.kind}: ${r.message}`);
  return unpackr.unpack(r.output) as T;
};

describe("exoclaw plugin new --kind channel", () => {
  it("scaffolds a channel plugin that builds, passes plugin test, and parses and sends as generated", async () => {
    const created = await exoclaw(["plugin", "new", "mychan", "--kind", "channel"]);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toContain("assembly/index.ts");
    expect(created.stdout).toMatch(/npm test .*static conformance checks/);
    const toml = await readFile(path.join(root, "mychan", "plugin.toml"), "utf8");
    expect(toml).toMatch(/^kind = "channel"$/m);

    const built = await exoclaw(["plugin", "build", "mychan"]);
    expect(built.code, built.stderr).toBe(0);
    const wasmFile = path.join(root, "mychan", "build", "mychan.wasm");
    const tested = await exoclaw(["plugin", "test", wasmFile]);
    expect(tested.code, tested.stdout + tested.stderr).toBe(0);
    expect(tested.stdout).toMatch(/mychan 0\.1\.0 \(channel\)/);
    expect(tested.stdout).toMatch(/parse \(function\)/);
    expect(tested.stdout).toMatch(/send \(function\)/);

    const seen: { url: string; headers: IncomingHttpHeaders; body: string }[] = [];
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        seen.push({ url: req.url ?? "", headers: req.headers, body: Buffer.concat(chunks).toString() });
        res.writeHead(200, { "content-type": "application/json" }).end("{}");
      });
    });
    await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
    const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    pool = createSandboxPool({
      name: "mychan",
      wasm: new Uint8Array(await readFile(wasmFile)),
      grant: { http: { hosts: ["127.0.0.1"], methods: ["POST"] }, secrets: { SIGNING_SECRET: "sign-key", API_TOKEN: "api-tok" }, config: { base_url: base } },
      limits: { ...DEFAULT_LIMITS, timeoutMs: 5_000 },
      stateDir: path.join(root, "state"),
      services: createHostServices(),
      logger: captureLogger(),
    });
    const body = JSON.stringify({ peer: "alice", text: "hi", id: "m1" });
    const request = (sig: string) => ({
      channel: "mychan",
      account: "default",
      method: "POST",
      path: "",
      query: "",
      headers: { "x-signature": sig },
      body: new TextEncoder().encode(body),
    });
    const good = out<ParseResult>(await pool.call("parse", packr.pack(request(`sha256=${createHmac("sha256", "sign-key").update(body).digest("hex")}`))));
    expect(good.response.status).toBe(200);
    expect(good.messages).toEqual([{ peer: "alice", peerKind: "direct", content: "hi", attachments: [], platformMessageId: "m1" }]);
    const forged = out<ParseResult>(await pool.call("parse", packr.pack(request(`sha256=${createHmac("sha256", "guess").update(body).digest("hex")}`))));
    expect(forged).toMatchObject({ response: { status: 401 }, messages: [] });

    expect(out<SendReceipt>(await pool.call("send", packr.pack({ account: "default", peer: "alice", content: "hello" })))).toEqual({});
    expect(seen).toHaveLength(1);
    expect(seen[0]!.url).toBe("/messages");
    expect(seen[0]!.headers.authorization).toBe("Bearer api-tok");
    expect(JSON.parse(seen[0]!.body)).toEqual({ peer: "alice", text: "hello" });
  });

  it("the first-party channel plugins pass plugin test too (built from source here)", async () => {
    for (const dir of ["plugins/channels/webhook", "plugins/channels/telegram"]) {
      const { name, wasm } = await buildPlugin(dir);
      const file = path.join(root, `${name}.wasm`);
      await writeFile(file, wasm);
      const r = await exoclaw(["plugin", "test", file]);
      expect(r.code, `${name}\n${r.stdout}${r.stderr}`).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`${name} 0\\.1\\.0 \\(channel\\)`));
      expect(r.stdout).toMatch(/parse \(function\).*send \(function\)/);
    }
  }, 120_000);

  it("refuses kind both with what to do instead", async () => {
    const both = await exoclaw(["plugin", "new", "b", "--kind", "both"]);
    expect(both.code).toBe(1);
    expect(both.stderr).toMatch(/kind "both" has no scaffold: generate a channel plugin \(--kind channel\)/);
  });
});
