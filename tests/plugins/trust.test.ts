// Approvals bind to the exact module (sha256), never to the name a manifest claims. A look-alike
// (an approved plugin's name in another module's manifest) gets no secret, kv, http or config
// however it arrives: replacing the approved file, sorting earlier in a plugin directory, or
// `plugin.load` from another path. Real modules (the hostcalls fixture, the first-party webhook
// channel) through the real plugin host and sandbox.
import { createHmac } from "node:crypto";
import { mkdir, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildPlugin } from "../../scripts/build-plugins.mjs";
import { embedManifest, extractManifest } from "../../scripts/lib/manifest-section.mjs";
import {
  ApprovalStore,
  approvalFor,
  loadPlugins,
  sha256Hex,
  type CapabilityRequest,
  type OperatorGrant,
  type PluginHost,
} from "../../host/src/plugins/index.js";
import { ChannelPluginError } from "../../host/src/plugins/index.js";
import { KV_FILE, KvStore } from "../../host/src/plugins/sandbox/index.js";
import { captureLogger, tempDir } from "./support.js";

const KEY = "hook-key-0123456789";
const grant: OperatorGrant = {
  http: { hosts: ["127.0.0.1"] },
  kv: { quotaBytes: 65536 },
  config: { greeting: "hello" },
  secrets: { HOOK_KEY: { env: "TRUST_HOOK_KEY" } },
};
const env = { TRUST_HOOK_KEY: KEY };

let root = "";
let genuine: Uint8Array;
/** The same name and requests, another module (only the description differs): a look-alike. */
let lookalike: Uint8Array;
let webhook: Uint8Array;
let webhookLookalike: Uint8Array;
const hosts: PluginHost[] = [];

/** `bytes` with its manifest changed by `change` (a different module claiming the same name). */
function repack(bytes: Uint8Array, change: (m: Record<string, unknown>) => void): Uint8Array {
  const m = extractManifest(bytes) as Record<string, unknown>;
  change(m);
  return embedManifest(bytes, m);
}

async function approve(state: string, name: string, bytes: Uint8Array, g: OperatorGrant, file: string): Promise<void> {
  const store = await ApprovalStore.open(ApprovalStore.pathFor(state));
  const manifest = extractManifest(bytes) as { capabilities: CapabilityRequest };
  await store.add(approvalFor(name, sha256Hex(bytes), manifest.capabilities, g, new Date(), file).record);
}

async function host(dirs: string[], state: string, logger = captureLogger()): Promise<PluginHost> {
  const h = await loadPlugins({ dirs, grants: { hostcalls: grant }, stateDir: state, env, logger });
  hosts.push(h);
  return h;
}

/** What each capability gives the plugin that holds the name `hostcalls` (tool results as text). */
async function probe(h: PluginHost): Promise<Record<string, string>> {
  const sig = createHmac("sha256", KEY).update("payload").digest("hex");
  const text = async (tool: string, input: unknown) => {
    const r = await h.callTool(tool, input);
    return `${r.isError ? "error: " : ""}${r.content}`;
  };
  return {
    kv: await text("kv", { op: "get", key: "notes" }),
    hmac: await text("hmac", { algorithm: "sha256", secret: "HOOK_KEY", data: "payload", signature: sig }),
    config: await text("config", { key: "greeting" }),
    http: await text("http", { url: "http://127.0.0.1:9/" }),
  };
}

const NOTHING = {
  kv: expect.stringMatching(/^error: .*capability 'kv' is not granted/),
  hmac: expect.stringMatching(/^error: .*secret 'HOOK_KEY' is not granted|^error: .*capability 'secrets' is not granted/),
  config: expect.stringMatching(/^error: .*capability 'config' is not granted/),
  http: expect.stringMatching(/^error: .*capability 'http' is not granted/),
};

beforeAll(async () => {
  root = await tempDir();
  genuine = (await buildPlugin("plugins/fixtures/hostcalls")).wasm;
  lookalike = repack(genuine, (m) => (m.description = "Exercises every host function (look-alike)."));
  webhook = (await buildPlugin("plugins/channels/webhook")).wasm;
  webhookLookalike = repack(webhook, (m) => (m.description = "accepts anything"));
}, 120_000);

afterAll(async () => {
  await Promise.all(hosts.map((h) => h.close()));
  if (root) await rm(root, { recursive: true, force: true });
});

/** A fresh plugin dir + state dir with the genuine module approved, holding a kv note. */
async function setup(name: string): Promise<{ dir: string; state: string; file: string }> {
  const dir = path.join(root, name, "plugins");
  const state = path.join(root, name, "state");
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, "hostcalls.wasm");
  await writeFile(file, genuine);
  await approve(state, "hostcalls", genuine, grant, file);
  return { dir, state, file };
}

describe("a look-alike of an approved plugin gets nothing", () => {
  it("the approved module itself gets its approved capabilities (baseline)", async () => {
    const { dir, state } = await setup("baseline");
    const h = await host([dir], state);
    expect(await h.callTool("kv", { op: "set", key: "notes", value: "alice: likes tea" })).toEqual({ content: "ok", isError: false });
    const p = await probe(h);
    expect(p.kv).toBe("alice: likes tea");
    expect(p.hmac).toBe("true");
    expect(p.config).toBe("hello");
    expect(h.list()[0]).toMatchObject({ name: "hostcalls", status: "loaded" });
  });

  it("replacing the approved file: pending_approval with nothing (no kv data, secret, http, config) until approved again", async () => {
    const { dir, state, file } = await setup("replace");
    const logger = captureLogger();
    const h = await host([dir], state, logger);
    expect(await h.callTool("kv", { op: "set", key: "notes", value: "alice: likes tea" })).toMatchObject({ isError: false });

    await writeFile(file, lookalike);
    await h.syncFile(file);
    expect(h.list()[0]).toMatchObject({ name: "hostcalls", sha256: sha256Hex(lookalike), status: "pending_approval", capabilities: { granted: {} } });
    expect(await probe(h)).toEqual(NOTHING);
    expect(
      logger
        .warnings()
        .map((w) => w.msg)
        .join("\n"),
    ).toMatch(/module not approved: plugin "hostcalls" was approved for another module .* until: exoclaw plugin approve /);

    // The operator approves the new module: the same name's data carries forward.
    await approve(state, "hostcalls", lookalike, grant, file);
    await h.reloadApprovals();
    expect(h.list()[0]).toMatchObject({ status: "loaded" });
    expect((await probe(h)).kv).toBe("alice: likes tea");
  });

  it.each([
    ["sorting earlier in the same directory", (dir: string, _other: string) => [dir]],
    ["in a directory scanned first", (dir: string, other: string) => [other, dir]],
    ["in a directory scanned last", (dir: string, other: string) => [dir, other]],
  ])("a second module claiming the name (%s) is refused; the approved one keeps the name", async (_label, dirs) => {
    const { dir, state } = await setup(`order-${_label.replace(/\W+/g, "-")}`);
    const other = path.join(root, `order-${_label.replace(/\W+/g, "-")}`, "other");
    await mkdir(other, { recursive: true });
    const fake = _label.startsWith("sorting") ? path.join(dir, "a-hostcalls.wasm") : path.join(other, "hostcalls.wasm");
    await writeFile(fake, lookalike);
    const logger = captureLogger();
    const h = await host(dirs(dir, other), state, logger);
    const byPath = Object.fromEntries(h.list().map((p) => [p.path, p]));
    expect(byPath[path.join(dir, "hostcalls.wasm")]).toMatchObject({ status: "loaded", sha256: sha256Hex(genuine) });
    expect(byPath[fake]).toMatchObject({
      status: "error",
      error: expect.stringMatching(/plugin "hostcalls" is (claimed by the approved module|already loaded from .*\(approved sha256)/),
    });
    expect(h.plugins().map((p) => p.sha256)).toEqual([sha256Hex(genuine)]);
    expect((await probe(h)).hmac).toBe("true"); // the tools route to the approved module
    expect(logger.warnings().length).toBeGreaterThan(0);
  });

  it("plugin.load of a look-alike from another path is refused while the approved module holds the name", async () => {
    const { dir, state } = await setup("load");
    const h = await host([dir], state);
    const elsewhere = path.join(root, "load", "elsewhere");
    await mkdir(elsewhere, { recursive: true });
    await writeFile(path.join(elsewhere, "x.wasm"), lookalike);
    await expect(h.load(path.join(elsewhere, "x.wasm"))).rejects.toThrow(
      /plugin "hostcalls" is already loaded from .* \(approved sha256 [0-9a-f]{64}\); this module \(sha256 [0-9a-f]{64}\) is not approved/,
    );
    expect(h.plugins().map((p) => p.sha256)).toEqual([sha256Hex(genuine)]);
    // With the approved module gone, the look-alike loads from there, but with nothing.
    await h.unload("hostcalls");
    const info = await h.load(path.join(elsewhere, "x.wasm"));
    expect(info).toMatchObject({ status: "pending_approval", capabilities: { granted: {} } });
    expect(await probe(h)).toEqual(NOTHING);
  });

  it("the approved module loaded by hand takes its name back from a look-alike", async () => {
    const { dir, state, file } = await setup("takeback");
    await writeFile(file, lookalike); // the look-alike is what the directory holds
    const h = await host([dir], state);
    expect(h.list()[0]).toMatchObject({ status: "pending_approval" });
    const elsewhere = path.join(root, "takeback", "genuine");
    await mkdir(elsewhere, { recursive: true });
    await writeFile(path.join(elsewhere, "hostcalls.wasm"), genuine);
    const info = await h.load(path.join(elsewhere, "hostcalls.wasm"));
    expect(info).toMatchObject({ status: "loaded", sha256: sha256Hex(genuine) });
    expect(h.list().find((p) => p.path === file)).toMatchObject({ status: "error", error: expect.stringMatching(/claimed by the approved module/) });
    expect((await probe(h)).hmac).toBe("true");
  });
});

describe("plugin state lives outside the plugin directory", () => {
  it("kv data under <state>/plugins/state (the default drop folder) moves once to <state>/plugin-state, and the approved plugin keeps it", async () => {
    const { dir, state } = await setup("migrate");
    const old = path.join(state, "plugins", "state", "hostcalls");
    const kv = new KvStore(old);
    await kv.set("notes", new TextEncoder().encode("bob: allergic to nuts"), 65536);
    await kv.flush();
    const logger = captureLogger();
    const h = await host([dir], state, logger);
    expect((await probe(h)).kv).toBe("bob: allergic to nuts");
    await expect(stat(path.join(state, "plugins", "state"))).rejects.toThrow(/ENOENT/);
    expect((await stat(path.join(state, "plugin-state", "hostcalls", KV_FILE))).isFile()).toBe(true);
    expect(logger.records.some((r) => r.msg === "plugin state moved out of the plugin directory")).toBe(true);
  });
});

describe("a look-alike channel plugin serves no channel", () => {
  it("a channel plugin never approved serves no channel until approved (no 401 from a plugin without its secrets)", async () => {
    const dir = path.join(root, "unapproved", "plugins");
    const state = path.join(root, "unapproved", "state");
    await mkdir(dir, { recursive: true });
    const file = path.join(dir, "webhook.wasm");
    await writeFile(file, webhook);
    const wgrant: OperatorGrant = { secrets: { WEBHOOK_SECRET: { env: "TRUST_HOOK_KEY" } } };
    const logger = captureLogger();
    const h = await loadPlugins({ dirs: [dir], grants: { webhook: wgrant }, stateDir: state, env, logger });
    hosts.push(h);
    expect(h.channelPlugins().map((p) => p.name)).not.toContain("webhook");
    expect(logger.warnings().map((w) => w.msg)).toContain(
      `channel plugin not approved: it serves no channel (webhooks answer 503) until: exoclaw plugin approve ${file}`,
    );
    await approve(state, "webhook", webhook, wgrant, file);
    await h.reloadApprovals();
    expect(h.channelPlugins().map((p) => p.name)).toContain("webhook");
  });

  it("a replaced webhook plugin is not offered to channels (webhooks answer 503) and cannot use the signing secret", async () => {
    const dir = path.join(root, "channel", "plugins");
    const state = path.join(root, "channel", "state");
    await mkdir(dir, { recursive: true });
    const file = path.join(dir, "webhook.wasm");
    await writeFile(file, webhook);
    const wgrant: OperatorGrant = {
      secrets: { WEBHOOK_SECRET: { env: "TRUST_HOOK_KEY" } },
      config: { base_url: "http://127.0.0.1:9/" },
      http: { hosts: ["127.0.0.1"] },
    };
    await approve(state, "webhook", webhook, wgrant, file);
    const h = await loadPlugins({ dirs: [dir], grants: { webhook: wgrant }, stateDir: state, env });
    hosts.push(h);
    const body = new TextEncoder().encode('{"peer":"a","content":"b","messageId":"1"}');
    const request = {
      channel: "webhook",
      account: "default",
      method: "POST",
      path: "",
      query: "",
      headers: { "x-exoclaw-signature": `sha256=${createHmac("sha256", KEY).update(body).digest("hex")}` },
      body,
    };
    expect(h.channelPlugins().map((p) => p.name)).toContain("webhook");
    expect(((await h.callChannel("webhook", "parse", request)) as { response: { status: number } }).response.status).toBe(200);

    await writeFile(file, webhookLookalike);
    await h.syncFile(file);
    expect(h.list()[0]).toMatchObject({ name: "webhook", status: "pending_approval", capabilities: { granted: {} } });
    expect(h.channelPlugins().map((p) => p.name)).not.toContain("webhook");
    const err = await h.callChannel("webhook", "parse", request).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ChannelPluginError);
    expect((err as ChannelPluginError).message).toMatch(/module .*webhook\.wasm \(sha256 [0-9a-f]{64}\) is not approved; run: exoclaw plugin approve /);
  });
});
