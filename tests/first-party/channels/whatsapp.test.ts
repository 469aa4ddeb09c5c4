// The whatsapp channel plugin (plugins/channels/whatsapp), built from source and run in the real
// plugin host (grants, approval, sandbox, hmac_verify / secret_equals on the host) through
// `callChannel`, against the fake Cloud API of tests/support/platforms/whatsapp.mjs.
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ParseResult, SendReceipt, WebhookRequest } from "../../../host/src/channels/types.js";
import type { CapabilityRequest } from "../../../host/src/plugins/capabilities.js";
import { ApprovalStore, approvalFor, loadPlugins, sha256Hex, type OperatorGrant, type PluginHost } from "../../../host/src/plugins/index.js";
import { buildPlugin } from "../../../scripts/build-plugins.mjs";
import { signWhatsAppBody, startFakeWhatsApp, whatsappMessage, whatsappStatus, type FakeWhatsApp } from "../../support/platforms/whatsapp.mjs";

const APP_SECRET = "0a1b2c3d4e5f-app-secret";
const VERIFY_TOKEN = "vibecoding";
const TOKEN = "EAAG-access-token";
const PHONE_ID = "106540352242922";
const USER = "16505551234";

let wasm: Uint8Array;
let manifest: Record<string, unknown>;
let wa: FakeWhatsApp;
const cleanup: Array<() => Promise<void>> = [];

/** A plugin host with the whatsapp plugin loaded, granted `grant` and approved as `exoclaw plugin approve` would. */
async function hostWith(grant: OperatorGrant, env: Record<string, string>): Promise<PluginHost> {
  const dir = await mkdtemp(path.join(tmpdir(), "exoclaw-whatsapp-"));
  const state = path.join(dir, "state");
  // The plugin directory must not contain the trust store (state/trust): a sibling of state.
  const plugins = path.join(dir, "plugins");
  await mkdir(plugins);
  await writeFile(path.join(plugins, "whatsapp.wasm"), wasm);
  const { record } = approvalFor("whatsapp", sha256Hex(wasm), manifest.capabilities as CapabilityRequest, grant);
  await (await ApprovalStore.open(ApprovalStore.pathFor(state))).add(record);
  const host = await loadPlugins({ dirs: [plugins], grants: { whatsapp: grant }, stateDir: state, env });
  cleanup.push(async () => {
    await host.close();
    await rm(dir, { recursive: true, force: true });
  });
  return host;
}

function fullGrant(config: Record<string, string> = {}): OperatorGrant {
  return {
    http: { hosts: ["127.0.0.1"] },
    config: { base_url: wa.url, ...config },
    secrets: {
      WHATSAPP_APP_SECRET: { env: "T_WA_APP_SECRET" },
      WHATSAPP_VERIFY_TOKEN: { env: "T_WA_VERIFY" },
      WHATSAPP_TOKEN: { env: "T_WA_TOKEN" },
    },
  };
}
const ENV = { T_WA_APP_SECRET: APP_SECRET, T_WA_VERIFY: VERIFY_TOKEN, T_WA_TOKEN: TOKEN };

let host: PluginHost;

beforeAll(async () => {
  const built = await buildPlugin("plugins/channels/whatsapp");
  wasm = built.wasm;
  manifest = built.manifest;
  wa = await startFakeWhatsApp({ token: TOKEN, appSecret: APP_SECRET, verifyToken: VERIFY_TOKEN, phoneNumberId: PHONE_ID });
  host = await hostWith(fullGrant(), ENV);
}, 60_000);

afterAll(async () => {
  for (const f of cleanup) await f();
  await wa?.close();
});

function post(payload: unknown, o: { secret?: string; signature?: string; unsigned?: boolean } = {}): WebhookRequest {
  const body = typeof payload === "string" ? payload : JSON.stringify(payload);
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (!o.unsigned) headers["x-hub-signature-256"] = o.signature ?? signWhatsAppBody(o.secret ?? APP_SECRET, body);
  return { channel: "whatsapp", account: "default", method: "POST", path: "", query: "", headers, body: new TextEncoder().encode(body) };
}

function get(query: string): WebhookRequest {
  return { channel: "whatsapp", account: "default", method: "GET", path: "", query, headers: {}, body: new Uint8Array(0) };
}

async function parse(req: WebhookRequest, h: PluginHost = host): Promise<ParseResult> {
  return (await h.callChannel("whatsapp", "parse", req)) as ParseResult;
}

const bodyText = (r: ParseResult): string =>
  r.response.body === undefined ? "" : typeof r.response.body === "string" ? r.response.body : new TextDecoder().decode(r.response.body);

describe("whatsapp parse: verification handshake (GET)", () => {
  it("hub.mode=subscribe with the right verify token: 200 with hub.challenge as the body", async () => {
    const r = await parse(get(`hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=${VERIFY_TOKEN}`));
    expect(r.response.status).toBe(200);
    expect(bodyText(r)).toBe("1158201444");
    expect(r.messages).toEqual([]);
  });

  it("a percent-encoded token is decoded before the comparison", async () => {
    const h = await hostWith(fullGrant(), { ...ENV, T_WA_VERIFY: "tok en/ü" });
    const r = await parse(get(`hub.mode=subscribe&hub.challenge=42&hub.verify_token=${encodeURIComponent("tok en/ü")}`), h);
    expect(r.response.status).toBe(200);
    expect(bodyText(r)).toBe("42");
  });

  it("a wrong token, a wrong mode or missing parameters: 403, and the challenge is not echoed", async () => {
    for (const q of [
      "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=guess",
      `hub.mode=unsubscribe&hub.challenge=1158201444&hub.verify_token=${VERIFY_TOKEN}`,
      "hub.mode=subscribe&hub.challenge=1158201444",
      "",
    ]) {
      const r = await parse(get(q));
      expect(r.response.status, q).toBe(403);
      expect(bodyText(r), q).not.toContain("1158201444");
    }
  });
});

describe("whatsapp parse: notifications (POST)", () => {
  it("a text message: peer = from, account = metadata.phone_number_id, direct, message id", async () => {
    const payload = whatsappMessage({
      phoneNumberId: PHONE_ID,
      from: USER,
      text: "Hello!",
      id: "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA=",
    });
    const r = await parse(post(payload));
    expect(r.response.status).toBe(200);
    expect(r.messages).toEqual([
      {
        account: PHONE_ID,
        peer: USER,
        peerKind: "direct",
        sender: USER,
        content: "Hello!",
        attachments: [],
        platformMessageId: "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA=",
      },
    ]);
  });

  it("media messages become attachments (id, MIME type, file name) with the caption as content", async () => {
    const image = whatsappMessage({
      phoneNumberId: PHONE_ID,
      from: USER,
      message: { type: "image", image: { caption: "This is a caption", mime_type: "image/jpeg", sha256: "81d3", id: "2754859441498128" } },
    });
    const doc = whatsappMessage({
      phoneNumberId: PHONE_ID,
      from: USER,
      message: { type: "document", document: { filename: "invoice.pdf", mime_type: "application/pdf", sha256: "aa", id: "99887766" } },
    });
    const voice = whatsappMessage({
      phoneNumberId: PHONE_ID,
      from: USER,
      message: { type: "audio", audio: { mime_type: "audio/ogg; codecs=opus", id: "555", voice: true } },
    });
    const [ri, rd, rv] = await Promise.all([parse(post(image)), parse(post(doc)), parse(post(voice))]);
    expect(ri.messages[0]).toMatchObject({ content: "This is a caption", attachments: [{ kind: "image", ref: "2754859441498128", mime: "image/jpeg" }] });
    expect(rd.messages[0]).toMatchObject({ content: "", attachments: [{ kind: "file", ref: "99887766", mime: "application/pdf", name: "invoice.pdf" }] });
    expect(rv.messages[0]).toMatchObject({ content: "", attachments: [{ kind: "audio", ref: "555", mime: "audio/ogg; codecs=opus" }] });
  });

  it("button and list replies carry their title; an unknown type still reaches the agent as a note", async () => {
    const button = whatsappMessage({
      phoneNumberId: PHONE_ID,
      from: USER,
      message: { type: "interactive", interactive: { type: "button_reply", button_reply: { id: "yes", title: "Yes please" } } },
    });
    const contacts = whatsappMessage({ phoneNumberId: PHONE_ID, from: USER, message: { type: "contacts", contacts: [{ name: { formatted_name: "Bob" } }] } });
    expect((await parse(post(button))).messages[0]?.content).toBe("Yes please");
    expect((await parse(post(contacts))).messages[0]?.content).toBe("[contacts message]");
  });

  it("statuses-only notifications and reactions: 200, no messages", async () => {
    const status = await parse(post(whatsappStatus({ phoneNumberId: PHONE_ID, recipient: USER })));
    expect(status.response.status).toBe(200);
    expect(status.messages).toEqual([]);
    const reaction = whatsappMessage({ phoneNumberId: PHONE_ID, from: USER, message: { type: "reaction", reaction: { message_id: "wamid.x", emoji: "👍" } } });
    expect((await parse(post(reaction))).messages).toEqual([]);
  });

  it("several entries and changes: every message, in order", async () => {
    const a = whatsappMessage({ phoneNumberId: PHONE_ID, from: USER, text: "one", id: "wamid.1" });
    const b = whatsappMessage({ phoneNumberId: "222", from: "4915112345678", text: "two", id: "wamid.2" });
    const payload = { object: "whatsapp_business_account", entry: [...a.entry, ...b.entry] };
    const r = await parse(post(payload));
    expect(r.messages.map((m) => [m.account, m.peer, m.content, m.platformMessageId])).toEqual([
      [PHONE_ID, USER, "one", "wamid.1"],
      ["222", "4915112345678", "two", "wamid.2"],
    ]);
  });

  it("a bad, missing or tampered X-Hub-Signature-256: 401 and no messages", async () => {
    const payload = whatsappMessage({ phoneNumberId: PHONE_ID, from: USER, text: "hi" });
    for (const req of [
      post(payload, { secret: "wrong-secret" }),
      post(payload, { unsigned: true }),
      post(payload, { signature: "sha1=0123" }),
      { ...post(payload), body: new TextEncoder().encode(JSON.stringify(whatsappMessage({ phoneNumberId: PHONE_ID, from: USER, text: "evil" }))) },
    ]) {
      const r = await parse(req);
      expect(r.response.status).toBe(401);
      expect(r.messages).toEqual([]);
    }
  });

  it("without the app secret granted, parse fails naming the secret", async () => {
    const h = await hostWith({ ...fullGrant(), secrets: { WHATSAPP_TOKEN: { env: "T_WA_TOKEN" } } }, ENV);
    await expect(parse(post(whatsappMessage({ phoneNumberId: PHONE_ID, from: USER, text: "x" })), h)).rejects.toThrow(/WHATSAPP_APP_SECRET/);
  });

  it("hostile but correctly signed bodies never crash the plugin: deep nesting, odd shapes", async () => {
    expect((await parse(post("[".repeat(5000) + "]".repeat(5000)))).response.status).toBe(400);
    for (const odd of [
      { entry: "x" },
      { entry: [1, "two", null, { changes: 5 }, { changes: [null, { value: [] }, { field: "messages", value: { messages: [7, { from: 1, id: 2 }] } }] }] },
      { entry: [{ changes: [{ field: "messages", value: { metadata: 9, messages: [{ from: USER, id: "wamid.odd", type: "image", image: "nope" }] } }] }] },
    ]) {
      const r = await parse(post(odd));
      expect(r.response.status, JSON.stringify(odd)).toBe(200);
    }
    // An image whose media object is not a map still reaches the agent, as a note.
    const r = await parse(
      post({ entry: [{ changes: [{ field: "messages", value: { messages: [{ from: USER, id: "wamid.odd2", type: "image", image: "nope" }] } }] }] }),
    );
    expect(r.messages).toEqual([
      { peer: USER, peerKind: "direct", sender: USER, content: "[image message]", attachments: [], platformMessageId: "wamid.odd2" },
    ]);
  });

  it("non-JSON bodies are 400, other methods 405", async () => {
    expect((await parse(post("nope"))).response.status).toBe(400);
    expect((await parse({ ...post("{}"), method: "PUT" })).response.status).toBe(405);
  });
});

describe("whatsapp send: Graph API messages", () => {
  it("POSTs /v21.0/<phone_number_id>/messages with the token injected by the host; the receipt is the wamid", async () => {
    wa.reset();
    const receipt = (await host.callChannel("whatsapp", "send", { account: PHONE_ID, peer: USER, content: "Hi there", replyTo: "wamid.IN1" })) as SendReceipt;
    expect(wa.sent).toHaveLength(1);
    expect(receipt.platformMessageId).toBe(wa.sent[0]!.id);
    const call = wa.calls[0]!;
    expect(call.path).toBe(`/v21.0/${PHONE_ID}/messages`);
    expect(call.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(call.json).toEqual({
      messaging_product: "whatsapp",
      recipient_type: "individual",
      to: USER,
      type: "text",
      text: { preview_url: false, body: "Hi there" },
      context: { message_id: "wamid.IN1" },
    });
  });

  it("a Graph error is a send error carrying error.message and code", async () => {
    wa.failNext("(#131047) Re-engagement message", 131047);
    await expect(host.callChannel("whatsapp", "send", { account: PHONE_ID, peer: USER, content: "hi" })).rejects.toThrow(
      /HTTP 400\): \(#131047\) Re-engagement message \(code 131047\)/,
    );
    const wrongToken = await hostWith(fullGrant(), { ...ENV, T_WA_TOKEN: "expired" });
    await expect(wrongToken.callChannel("whatsapp", "send", { account: PHONE_ID, peer: USER, content: "hi" })).rejects.toThrow(
      /Invalid OAuth access token.*code 190/,
    );
  });

  it("the account is the phone_number_id; a non-numeric account uses config phone_number_id, else a clear error", async () => {
    await expect(host.callChannel("whatsapp", "send", { account: "default", peer: USER, content: "hi" })).rejects.toThrow(
      /account 'default' is not a phone_number_id.*config value phone_number_id/,
    );
    const withId = await hostWith(fullGrant({ phone_number_id: PHONE_ID, api_version: "v20.0" }), ENV);
    wa.reset();
    await withId.callChannel("whatsapp", "send", { account: "default", peer: `+${USER}`, content: "hi" });
    expect(wa.calls[0]?.path).toBe(`/v20.0/${PHONE_ID}/messages`);
    expect(wa.sent[0]?.to).toBe(USER);
  });

  it("a peer that is not a phone number is refused before any request", async () => {
    wa.reset();
    await expect(host.callChannel("whatsapp", "send", { account: PHONE_ID, peer: "../../v1/evil", content: "hi" })).rejects.toThrow(/not a WhatsApp id/);
    expect(wa.calls).toHaveLength(0);
  });

  it("text over 4096 characters is split into several messages, only the first quoting replyTo", async () => {
    wa.reset();
    const words = Array.from({ length: 1500 }, (_, i) => `word${i}`).join(" ");
    await host.callChannel("whatsapp", "send", { account: PHONE_ID, peer: USER, content: words, replyTo: "wamid.IN2" });
    expect(wa.sent.length).toBeGreaterThan(1);
    for (const s of wa.sent) expect(s.body.length).toBeLessThanOrEqual(4096);
    expect(wa.sent.map((s) => s.body).join(" ")).toBe(words);
    expect(wa.sent.map((s) => s.replyTo)).toEqual(["wamid.IN2", ...wa.sent.slice(1).map(() => undefined)]);
  });
});

describe("send_file (Cloud API: POST /<phone_number_id>/media multipart, then an image/document message by media id)", () => {
  it("the plugin exports send_file", () => {
    expect(host.channelPlugins().find((p) => p.name === "whatsapp")?.exports.sendFile).toBe(true);
  });

  it("a PNG is uploaded with its type and sent as an image message with the caption; the receipt is the message's wamid", async () => {
    wa.reset();
    const bytes = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0xff, 0x80, 0x01]);
    const receipt = (await host.callChannel("whatsapp", "send_file", {
      account: PHONE_ID,
      peer: `+${USER}`,
      file: { data: bytes, mime: "image/png", name: "chart.png", caption: "the chart" },
    })) as SendReceipt;
    expect(wa.uploads).toHaveLength(1);
    const up = wa.uploads[0]!;
    expect(up).toMatchObject({ type: "image/png", name: "chart.png", messagingProduct: "whatsapp" });
    expect(Buffer.compare(up.bytes, bytes)).toBe(0);
    const upload = wa.calls.find((c) => c.path === `/v21.0/${PHONE_ID}/media`)!;
    expect(upload.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(wa.filesSent).toHaveLength(1);
    expect(wa.filesSent[0]).toMatchObject({ kind: "image", to: USER, mediaId: up.id, caption: "the chart" });
    expect(receipt.platformMessageId).toBe(wa.filesSent[0]!.id);
    expect(wa.sent).toHaveLength(0); // no text message
  });

  it("a PDF goes as a document with its filename", async () => {
    wa.reset();
    const bytes = Buffer.from("%PDF-1.4\n\u0000binary");
    await host.callChannel("whatsapp", "send_file", { account: PHONE_ID, peer: USER, file: { data: bytes, mime: "application/pdf", name: "q3 report.pdf" } });
    expect(wa.filesSent[0]).toMatchObject({ kind: "document", filename: "q3 report.pdf", mediaId: wa.uploads[0]!.id });
    expect(wa.filesSent[0]!.caption).toBeUndefined();
    expect(Buffer.compare(wa.filesSent[0]!.upload!.bytes, bytes)).toBe(0);
  });

  it("a Graph error on the upload is a permanent send_file error naming it; a bad peer is refused before any request", async () => {
    wa.reset();
    await expect(
      host.callChannel("whatsapp", "send_file", { account: "999", peer: USER, file: { data: Buffer.from("x"), mime: "text/plain", name: "a.txt" } }),
    ).rejects.toThrow(/media upload failed \(HTTP 400\).*does not exist/);
    expect(wa.filesSent).toHaveLength(0);
    wa.reset();
    await expect(
      host.callChannel("whatsapp", "send_file", { account: PHONE_ID, peer: "../x", file: { data: Buffer.from("x"), mime: "text/plain", name: "a.txt" } }),
    ).rejects.toThrow(/not a WhatsApp id/);
    expect(wa.calls).toHaveLength(0);
  });
});
