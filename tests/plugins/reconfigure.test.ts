// A config reload hands the plugin host new [plugins.grants] and [plugins.limits]
// (`PluginHost.reconfigure`): loaded plugins are re-resolved against them and their approvals,
// which stay bound to the module's sha256. Real module (the hostcalls fixture) through the real
// plugin host and sandbox.
import { mkdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildPlugin } from "../../scripts/build-plugins.mjs";
import { extractManifest } from "../../scripts/lib/manifest-section.mjs";
import {
  ApprovalStore,
  approvalFor,
  DEFAULT_LIMITS,
  loadPlugins,
  sha256Hex,
  type CapabilityRequest,
  type OperatorGrant,
  type PluginHost,
} from "../../host/src/plugins/index.js";
import { captureLogger, tempDir } from "./support.js";

const grant: OperatorGrant = { kv: { quotaBytes: 65536 }, config: { greeting: "hello" } };
let root = "";
let wasm: Uint8Array;
const hosts: PluginHost[] = [];

beforeAll(async () => {
  root = await tempDir();
  wasm = (await buildPlugin("plugins/fixtures/hostcalls")).wasm;
}, 120_000);

afterAll(async () => {
  await Promise.all(hosts.map((h) => h.close()));
  if (root) await rm(root, { recursive: true, force: true });
});

/** A host with the hostcalls module approved for `grant`. */
async function approvedHost(name: string): Promise<PluginHost> {
  const dir = path.join(root, name, "plugins");
  const state = path.join(root, name, "state");
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, "hostcalls.wasm");
  await writeFile(file, wasm);
  const store = await ApprovalStore.open(ApprovalStore.pathFor(state));
  const manifest = extractManifest(wasm) as { capabilities: CapabilityRequest };
  await store.add(approvalFor("hostcalls", sha256Hex(wasm), manifest.capabilities, grant, new Date(), file).record);
  const h = await loadPlugins({ dirs: [dir], grants: { hostcalls: grant }, stateDir: state, logger: captureLogger() });
  hosts.push(h);
  return h;
}

const text = async (h: PluginHost, tool: string, input: unknown) => {
  const r = await h.callTool(tool, input);
  return `${r.isError ? "error: " : ""}${r.content}`;
};

describe("PluginHost.reconfigure (config reload)", () => {
  it("a grant taken away is gone at the next call; given back within the approval, it returns", async () => {
    const h = await approvedHost("narrow");
    expect(await text(h, "kv", { op: "set", key: "k", value: "v" })).toBe("ok");
    expect(await h.reconfigure({ grants: { hostcalls: { config: { greeting: "hello" } } } })).toEqual(["hostcalls"]);
    expect(await text(h, "kv", { op: "get", key: "k" })).toMatch(/^error: .*capability 'kv' is not granted/);
    expect(await text(h, "config", { key: "greeting" })).toBe("hello");
    expect(await h.reconfigure({ grants: { hostcalls: grant } })).toEqual(["hostcalls"]);
    expect(await text(h, "kv", { op: "get", key: "k" })).toBe("v");
  });

  it("a grant widened beyond what was approved stays pending: the reload does not approve", async () => {
    const h = await approvedHost("widen");
    await h.reconfigure({ grants: { hostcalls: { ...grant, http: { hosts: ["127.0.0.1"] } } } });
    expect(await text(h, "http", { url: "http://127.0.0.1:9/" })).toMatch(/^error: .*capability 'http' is not granted/);
    expect(h.list()[0]).toMatchObject({ status: "pending_approval", capabilities: { pending: { http: expect.anything() } } });
  });

  it("unchanged grants and limits swap nothing; changed limits swap the pool", async () => {
    const h = await approvedHost("limits");
    expect(await h.reconfigure({ grants: { hostcalls: grant } })).toEqual([]);
    expect(await h.reconfigure({ grants: { hostcalls: grant }, limits: { hostcalls: { ...DEFAULT_LIMITS, timeoutMs: 1234 } } })).toEqual(["hostcalls"]);
    expect(await text(h, "config", { key: "greeting" })).toBe("hello");
  });
});

describe("PluginHost.reconfigure with secret values (a credential added or rotated, then a reload)", () => {
  it("the next call sees the values the reload brings; before it, the secret is not granted", async () => {
    const withSecret: OperatorGrant = { secrets: { TOKEN: { env: "RELOAD_TOKEN" } } };
    const dir = path.join(root, "secrets", "plugins");
    const state = path.join(root, "secrets", "state");
    await mkdir(dir, { recursive: true });
    const file = path.join(dir, "hostcalls.wasm");
    await writeFile(file, wasm);
    const store = await ApprovalStore.open(ApprovalStore.pathFor(state));
    const manifest = extractManifest(wasm) as { capabilities: CapabilityRequest };
    await store.add(approvalFor("hostcalls", sha256Hex(wasm), manifest.capabilities, withSecret, new Date(), file).record);
    const h = await loadPlugins({ dirs: [dir], grants: { hostcalls: withSecret }, stateDir: state, env: {}, logger: captureLogger() });
    hosts.push(h);
    expect(await text(h, "secret_equals", { secret: "TOKEN", value: "rotated-value-0123" })).toMatch(/^error: /);
    expect(await h.reconfigure({ grants: { hostcalls: withSecret }, env: { RELOAD_TOKEN: "rotated-value-0123" } })).toEqual(["hostcalls"]);
    expect(await text(h, "secret_equals", { secret: "TOKEN", value: "rotated-value-0123" })).toBe("true");
  });
});
