// End to end: the real gateway process with the whatsapp channel plugin
// (build/plugins/whatsapp.wasm, approved with the CLI), the provider emulator as the model, and
// the fake WhatsApp Cloud API as the platform. Notifications are delivered the way Meta delivers
// them (signed JSON POSTs; the GET verification handshake); replies must arrive at the fake's
// /<version>/<phone_number_id>/messages.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startChannelGateway, type ChannelGateway } from "../support/channel-gateway.js";
import { startFakeWhatsApp, whatsappMessage, whatsappStatus, type FakeWhatsApp } from "../support/platforms/whatsapp.mjs";

const APP_SECRET = "e2e-wa-app-secret";
const VERIFY_TOKEN = "e2e-wa-verify-token";
const TOKEN = "e2e-wa-access-token";
const PHONE_ID = "106540352242922";
const ALICE = "16505551234";
const MALLORY = "4915100000000";

let wa: FakeWhatsApp;
let gw: ChannelGateway;
let hook: string;

beforeAll(async () => {
  wa = await startFakeWhatsApp({ token: TOKEN, appSecret: APP_SECRET, verifyToken: VERIFY_TOKEN, phoneNumberId: PHONE_ID });
  gw = await startChannelGateway({
    config: {
      agents: [{ id: "main", provider: "anthropic", model: "emu-whatsapp", tools: [] }],
      channels: { whatsapp: { allow: [ALICE] } },
      plugins: {
        grants: {
          whatsapp: {
            http: { hosts: ["127.0.0.1"], methods: ["POST"] },
            config: { base_url: wa.url },
            secrets: {
              WHATSAPP_APP_SECRET: { env: "E2E_WA_APP_SECRET" },
              WHATSAPP_VERIFY_TOKEN: { env: "E2E_WA_VERIFY" },
              WHATSAPP_TOKEN: { env: "E2E_WA_TOKEN" },
            },
          },
        },
        limits: { whatsapp: { timeout_ms: 10_000 } },
      },
    },
    env: { E2E_WA_APP_SECRET: APP_SECRET, E2E_WA_VERIFY: VERIFY_TOKEN, E2E_WA_TOKEN: TOKEN },
  });
  hook = `${gw.baseUrl}/webhook/whatsapp`;
}, 60_000);

afterAll(async () => {
  await gw?.stop();
  await wa?.close();
});

const modelRequestsWith = (marker: string) => gw.emulator.requests.filter((r) => JSON.stringify(r.body).includes(marker));

describe("whatsapp channel through the gateway", () => {
  it("the verification handshake echoes hub.challenge for the right token, 403 otherwise", async () => {
    const ok = await wa.verify(hook, { challenge: "1158201444" });
    expect(ok).toEqual({ status: 200, body: "1158201444" });
    const bad = await wa.verify(hook, { challenge: "1158201444", verifyToken: "guess" });
    expect(bad.status).toBe(403);
    expect(bad.body).not.toContain("1158201444");
  });

  it("an allowed user's message is answered through the Graph API, quoting it, from the number it reached", async () => {
    const before = wa.sent.length;
    const payload = whatsappMessage({ phoneNumberId: PHONE_ID, from: ALICE, text: "hello wa-1", id: "wamid.E2E1" });
    const r = await wa.deliver(hook, payload);
    expect(r.status).toBe(200);
    const sent = (await wa.waitForSent(before + 1))[before]!;
    expect(sent).toMatchObject({ phoneNumberId: PHONE_ID, version: "v21.0", to: ALICE, body: "You said: hello wa-1", replyTo: "wamid.E2E1" });
    const call = wa.calls.find((c) => c.json?.text?.body === "You said: hello wa-1")!;
    expect(call.headers.authorization).toBe(`Bearer ${TOKEN}`);
    const model = modelRequestsWith("hello wa-1");
    expect(model).toHaveLength(1);
    expect(model[0]!.body.model).toBe("emu-whatsapp");
    // The account of the session is the business number (metadata.phone_number_id).
    const accepted = await gw.waitForLog((e) => e.channel === "whatsapp" && e.peer === ALICE && e.msg === "channel message accepted");
    expect(accepted.account).toBe(PHONE_ID);
  });

  it("a stranger gets nothing: 200 to Meta, no model request, no message sent", async () => {
    const before = wa.sent.length;
    const r = await wa.deliver(hook, whatsappMessage({ phoneNumberId: PHONE_ID, from: MALLORY, text: "stranger wa-2" }));
    expect(r.status).toBe(200);
    await gw.waitForLog((e) => e.channel === "whatsapp" && e.peer === MALLORY && /allowlist/.test(String(e.msg)));
    await new Promise((res) => setTimeout(res, 1500));
    expect(modelRequestsWith("stranger wa-2")).toHaveLength(0);
    expect(wa.sent.length).toBe(before);
  });

  it("a bad signature gets 401 and nothing else happens", async () => {
    const before = wa.sent.length;
    const callsBefore = wa.calls.length;
    const payload = whatsappMessage({ phoneNumberId: PHONE_ID, from: ALICE, text: "forged wa-3" });
    expect((await wa.deliver(hook, payload, { appSecret: "attacker-guess" })).status).toBe(401);
    expect((await wa.deliver(hook, payload, { unsigned: true })).status).toBe(401);
    await new Promise((res) => setTimeout(res, 1500));
    expect(modelRequestsWith("forged wa-3")).toHaveLength(0);
    expect(wa.sent.length).toBe(before);
    expect(wa.calls.length).toBe(callsBefore);
  });

  it("delivery receipts (statuses) are acknowledged and start nothing", async () => {
    const before = gw.emulator.requests.length;
    const r = await wa.deliver(hook, whatsappStatus({ phoneNumberId: PHONE_ID, recipient: ALICE, messageId: "wamid.FAKE00000001" }));
    expect(r.status).toBe(200);
    await new Promise((res) => setTimeout(res, 1000));
    expect(gw.emulator.requests.length).toBe(before);
  });

  it("a redelivered notification (same message id) is answered once", async () => {
    const before = wa.sent.length;
    const payload = whatsappMessage({ phoneNumberId: PHONE_ID, from: ALICE, text: "again wa-4", id: "wamid.E2EREDELIVER" });
    expect((await wa.deliver(hook, payload)).status).toBe(200);
    expect((await wa.deliver(hook, payload)).status).toBe(200);
    await wa.waitForSent(before + 1);
    expect((await wa.deliver(hook, payload)).status).toBe(200);
    await new Promise((res) => setTimeout(res, 1500));
    expect(wa.sent.slice(before).map((s) => s.body)).toEqual(["You said: again wa-4"]);
    expect(modelRequestsWith("again wa-4")).toHaveLength(1);
  });
});
