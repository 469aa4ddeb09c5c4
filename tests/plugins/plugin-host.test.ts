// The plugin host's channel API on the real first-party channel plugins (build/plugins).
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChannelPluginError, loadPlugins, type PluginHost } from "../../host/src/plugins/index.js";
import { ApprovalStore, approvalFor, sha256Hex } from "../../host/src/plugins/index.js";
import type { PluginManifest } from "../../host/src/plugins/types.js";
import { checkInterface } from "../../host/src/plugins/validate.js";
import { ROOT } from "../support/gateway.js";

let host: PluginHost;
let state = "";
beforeAll(async () => {
  // Channel plugins serve only once approved for their exact module: approve each, with nothing granted.
  state = await mkdtemp(path.join(tmpdir(), "exoclaw-channel-host-"));
  const dir = path.join(ROOT, "build", "plugins");
  const store = await ApprovalStore.open(ApprovalStore.pathFor(state));
  for (const name of ["webhook", "telegram", "slack", "whatsapp", "discord"]) {
    const bytes = new Uint8Array(await readFile(path.join(dir, `${name}.wasm`)));
    await store.add(approvalFor(name, sha256Hex(bytes), {}, {}).record);
  }
  host = await loadPlugins({ dirs: [dir], stateDir: state });
});
afterAll(async () => {
  await host?.close();
  if (state) await rm(state, { recursive: true, force: true });
});

async function failure(p: Promise<unknown>): Promise<ChannelPluginError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ChannelPluginError);
  return err as ChannelPluginError;
}

describe("plugin host: channel plugins", () => {
  it("lists the loaded channel plugins with their optional exports, declared signature headers and instances", () => {
    const list = host.channelPlugins();
    expect(list).toContainEqual({ name: "webhook", exports: { poll: false }, signatureHeaders: ["x-exoclaw-signature"], maxInFlight: 4 });
    expect(list).toContainEqual({
      name: "telegram",
      exports: { poll: true, typing: true, edit: true, sendFile: true },
      signatureHeaders: ["x-telegram-bot-api-secret-token"],
      maxInFlight: 4,
    });
    expect(list).toContainEqual({
      name: "discord",
      exports: { poll: false, connect: true, typing: true, edit: true, sendFile: true },
      signatureHeaders: [],
      maxInFlight: 4,
    });
    expect(list.map((p) => p.name)).not.toContain("calculator");
  });

  it("calls parse with MessagePack in and out (an unsigned request is refused 401)", async () => {
    const out = (await host.callChannel("webhook", "parse", {
      channel: "webhook",
      account: "default",
      method: "POST",
      path: "",
      query: "",
      headers: { "content-type": "application/json" },
      body: new TextEncoder().encode('{"peer":"a","content":"b","messageId":"1"}'),
      thread: undefined,
    })) as { response: { status: number }; messages: unknown[] };
    expect(out.response.status).toBe(401);
    expect(out.messages ?? []).toHaveLength(0);
  });

  it("names the plugin, export and reason of a failure", async () => {
    const unknown = await failure(host.callChannel("nope", "parse", {}));
    expect(unknown).toMatchObject({ plugin: "nope", exportName: "parse", kind: "not_loaded" });
    expect(unknown.message).toBe("channel plugin 'nope' is not available (export 'parse'): no plugin named 'nope' is loaded");
    const tool = await failure(host.callChannel("calculator", "send", {}));
    expect(tool.message).toMatch(/'calculator' is a tool plugin, not a channel plugin/);
    const noPoll = await failure(host.callChannel("webhook", "poll", { account: "default" }));
    expect(noPoll).toMatchObject({ kind: "no_export" });
    expect(noPoll.message).toMatch(/^channel plugin 'webhook' lacks the export \(export 'poll'\): the module has no function export 'poll'$/);
    // Not granted base_url: the plugin's own error, through the sandbox.
    const send = await failure(host.callChannel("webhook", "send", { account: "default", peer: "a", content: "hi" }));
    expect(send).toMatchObject({ plugin: "webhook", exportName: "send", kind: "plugin_error" });
    expect(send.message).toMatch(/^channel plugin 'webhook' failed \(export 'send'\): .*base_url/);
  });
});

describe("validation of channel plugin exports", () => {
  const manifest = (kind: PluginManifest["kind"]) =>
    ({ abi: 1, name: "x", version: "1.0.0", kind, description: "", tools: [], capabilities: {} }) as unknown as PluginManifest;
  const fn = (name: string) => ({ name, kind: "function" as const });

  it("requires parse and send of a channel plugin, naming what is missing", () => {
    expect(checkInterface(manifest("channel"), [], [fn("parse"), fn("send")])).toBeNull();
    expect(checkInterface(manifest("channel"), [], [fn("parse"), fn("send"), fn("poll")])).toBeNull();
    expect(checkInterface(manifest("channel"), [], [fn("parse")])).toMatch(/does not export a function "send" \(a channel plugin needs "parse" and "send"/);
    expect(checkInterface(manifest("channel"), [], [fn("call")])).toMatch(/does not export a function "parse" and a function "send"/);
    expect(checkInterface(manifest("channel"), [], [fn("parse"), fn("send"), { name: "poll", kind: "global" }])).toMatch(
      /export "poll" is a global, not a function/,
    );
  });

  it("requires call, parse and send of a `both` plugin", () => {
    expect(checkInterface(manifest("both"), [], [fn("call"), fn("parse"), fn("send")])).toBeNull();
    expect(checkInterface(manifest("both"), [], [fn("call"), fn("send")])).toMatch(/a function "parse"/);
    expect(checkInterface(manifest("both"), [], [fn("parse"), fn("send")])).toMatch(/a function "call"/);
  });
});
