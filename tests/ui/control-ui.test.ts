// The Control UI and WebChat in a real browser: Debian's chromium (installed by the test itself,
// never downloaded) driven through Playwright's API, against the real gateway process, the
// provider emulator and real WASM plugins (calculator, http_fetch, the webhook channel).
// Screenshots of each page go to a temporary directory, or to docs/ui/ (docs/ui.md shows them)
// with EXOCLAW_UI_SCREENSHOTS=1 (so that `npm test` leaves the checkout as it was).
import { mkdirSync, mkdtempSync } from "node:fs";
import { createServer, get as httpGet } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Browser, type BrowserContext, type Page } from "@playwright/test";
import { Unpackr } from "msgpackr";
import WebSocket from "ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureChromium } from "../../scripts/ensure-chromium.mjs";
import { hmacSha256Hex, startChannelGateway, startFakePlatform, webhookGrant, type ChannelGateway, type FakePlatform } from "../support/channel-gateway.js";
import { ROOT, RpcClient } from "../support/gateway.js";

const TOKEN = "ui-test-token-0123456789abcdef";
const SECRET = "test-webhook-secret-0123456789";
const SHOTS = process.env.EXOCLAW_UI_SCREENSHOTS === "1" ? join(ROOT, "docs", "ui") : mkdtempSync(join(tmpdir(), "exoclaw-ui-shots-"));
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

// Both transports serve the page and the upgrade; screenshots come from the uws run.
describe.each(["uws", "ws"] as const)("Control UI in Chromium (%s transport)", (transport) => {
  let platform: FakePlatform;
  let gw: ChannelGateway;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  /** Every WebSocket frame the page received, decoded, in order. */
  const frames: { binary: boolean; msg: any }[] = [];
  /** Every request the page sent, decoded, in order. */
  const sent: { at: number; msg: any }[] = [];
  const shot = async (name: string) => {
    if (transport === "uws") await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: false });
  };

  beforeAll(async () => {
    const executablePath = ensureChromium();
    mkdirSync(SHOTS, { recursive: true });
    platform = await startFakePlatform();
    gw = await startChannelGateway({
      config: {
        channels: { webhook: { allow: ["alice"] } },
        plugins: {
          grants: {
            webhook: webhookGrant(`${platform.url}/inbox`),
            // Granted in exoclaw.toml, not approved yet: pending until the UI approves it.
            http_fetch: { http: { hosts: ["example.com"] } },
          },
        },
      },
      env: { EXOCLAW_TOKEN: TOKEN, TEST_WEBHOOK_SECRET: SECRET, EXOCLAW_TRANSPORT: transport },
    });
    browser = await chromium.launch({ executablePath, args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
    context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    page = await context.newPage();
    page.on("websocket", (ws) => {
      ws.on("framereceived", (f) => {
        const binary = typeof f.payload !== "string";
        frames.push({ binary, msg: binary ? unpackr.unpack(f.payload as Buffer) : JSON.parse(f.payload as string) });
      });
      ws.on("framesent", (f) => {
        sent.push({ at: Date.now(), msg: typeof f.payload !== "string" ? unpackr.unpack(f.payload as Buffer) : JSON.parse(f.payload as string) });
      });
    });
  }, 900_000);

  afterAll(async () => {
    await browser?.close();
    await gw?.stop();
    await platform?.close();
  });

  it("serves the page with content types, cache headers and a strict CSP; the WebSocket refuses other origins", async () => {
    expect(gw.gateway.ready.transport).toBe(transport);
    const index = await fetch(`${gw.baseUrl}/`, { headers: { "accept-encoding": "gzip" } });
    expect(index.status).toBe(200);
    expect(index.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(index.headers.get("cache-control")).toBe("no-cache");
    const csp = index.headers.get("content-security-policy")!;
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain("unsafe-inline");
    expect(csp).toContain("frame-ancestors 'none'");
    const html = await index.text();
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/); // no inline script
    const asset = /src="(\/assets\/[^"]+\.js)"/.exec(html)![1]!;
    const js = await fetch(`${gw.baseUrl}${asset}`);
    expect(js.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect(js.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
    expect((await fetch(`${gw.baseUrl}/assets/nope-123.js`)).status).toBe(404);

    const upgrade = (origin: string, protocols: string[]) =>
      new Promise<{ opened: boolean; protocol?: string; status?: number }>((resolve) => {
        const ws = new WebSocket(`ws://127.0.0.1:${gw.port}/ws`, protocols, { headers: { origin } });
        ws.once("open", () => (resolve({ opened: true, protocol: ws.protocol }), ws.close()));
        ws.once("unexpected-response", (_req, res) => resolve({ opened: false, status: res.statusCode! }));
        ws.once("error", () => resolve({ opened: false }));
      });
    const bearer = `exoclaw.bearer.${Buffer.from(TOKEN).toString("base64url")}`;
    expect(await upgrade("http://evil.example", ["exoclaw.v1", bearer])).toEqual({ opened: false, status: 403 });
    expect(
      await upgrade(`http://127.0.0.1:${gw.port}`, ["exoclaw.v1", `exoclaw.bearer.${Buffer.from("wrong-token-0123456789").toString("base64url")}`]),
    ).toEqual({
      opened: false,
      status: 401,
    });
    // The gateway's own origin with the token as a subprotocol; the answer never echoes the token.
    expect(await upgrade(`http://127.0.0.1:${gw.port}`, ["exoclaw.v1", bearer])).toEqual({ opened: true, protocol: "exoclaw.v1" });
  });

  it("asks for the token, refuses a wrong one, and keeps the right one in sessionStorage only", async () => {
    await page.goto(gw.baseUrl);
    await page.getByLabel("Token").fill("definitely-not-the-token");
    await page.getByRole("button", { name: "Log in" }).click();
    await page.getByRole("alert").filter({ hasText: "refused this token" }).waitFor();
    await shot("login");
    await page.getByLabel("Token").fill(TOKEN);
    await page.getByRole("button", { name: "Log in" }).click();
    await page.getByRole("link", { name: "Overview" }).waitFor();
    await page.getByTestId("health").filter({ hasText: "ok" }).waitFor();
    await page.getByTestId("ready").filter({ hasText: "ready" }).waitFor();
    expect(page.url()).not.toContain(TOKEN);
    expect(await page.evaluate(() => (globalThis as any).sessionStorage.getItem("exoclaw.token"))).toBe(TOKEN);
    expect(await page.evaluate(() => (globalThis as any).localStorage.getItem("exoclaw.token"))).toBeNull();
    await page.getByTestId("tokens-today").filter({ hasText: /\d/ }).waitFor(); // the metrics and usage part
    await shot("overview");
    // Live by server push, not polling: one events.subscribe, then status arrives without being asked.
    expect(sent.filter((s) => s.msg.method === "events.subscribe" && s.msg.params.topics.includes("status"))).toHaveLength(1);
    const asked = sent.length;
    const pushed = frames.filter((f) => f.msg.method === "event" && f.msg.params.topic === "status").length;
    await page.waitForTimeout(3000);
    expect(frames.filter((f) => f.msg.method === "event" && f.msg.params.topic === "status").length).toBeGreaterThan(pushed);
    expect(sent.slice(asked).filter((s) => s.msg.method === "status")).toEqual([]);
  });

  it("blocks inline script (CSP)", async () => {
    // (The callback runs in the page; `globalThis` is its window.)
    const result = await page.evaluate(
      () =>
        new Promise<{ ran: boolean; violation: string | null }>((resolve) => {
          const w = globalThis as any;
          let violation: string | null = null;
          w.document.addEventListener("securitypolicyviolation", (e: { violatedDirective: string }) => (violation = e.violatedDirective), { once: true });
          const s = w.document.createElement("script");
          s.textContent = "window.__injected = true";
          w.document.body.appendChild(s);
          setTimeout(() => resolve({ ran: w.__injected === true, violation }), 200);
        }),
    );
    expect(result).toEqual({ ran: false, violation: expect.stringMatching(/^script-src/) });
  });

  it("a page of another origin gets neither the UI's page, its script, a frame of it, nor its WebSocket", async () => {
    // Another origin on this host (another port: same-site, cross-origin), as an attacker's page would be.
    const html = (await (await fetch(`${gw.baseUrl}/`)).text()).match(/src="(\/assets\/[^"]+\.js)"/)![1]!;
    const other = createServer((_req, res) => {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      res.end(`<!doctype html><body><iframe src="${gw.baseUrl}/"></iframe><script>
        window.results = {};
        fetch("${gw.baseUrl}/", { mode: "no-cors" }).then(() => (results.fetch = "answered"), () => (results.fetch = "failed"));
        const s = document.createElement("script");
        s.src = "${gw.baseUrl}${html}";
        s.onload = () => (results.script = "loaded");
        s.onerror = () => (results.script = "refused");
        document.body.appendChild(s);
        const ws = new WebSocket("ws://127.0.0.1:${gw.port}/ws", ["exoclaw.v1"]);
        ws.onopen = () => (results.ws = "open");
        ws.onclose = () => (results.ws ??= "refused");
      </script></body>`);
    });
    await new Promise<void>((r) => other.listen(0, "127.0.0.1", () => r()));
    const evil = await context.newPage();
    const statuses: { url: string; type: string; status: number }[] = [];
    evil.on("response", (r) => r.url().startsWith(gw.baseUrl) && statuses.push({ url: r.url(), type: r.request().resourceType(), status: r.status() }));
    try {
      await evil.goto(`http://127.0.0.1:${(other.address() as AddressInfo).port}/`);
      await evil.waitForFunction(() => (globalThis as any).results.ws && (globalThis as any).results.script, undefined, { timeout: 15_000 });
      await evil.waitForFunction(() => (globalThis as any).results.fetch, undefined, { timeout: 15_000 });
      // Refused by the browser too (cross-origin-resource-policy, frame-ancestors), and by the gateway:
      expect(await evil.evaluate(() => (globalThis as any).results)).toEqual({ script: "refused", fetch: "failed", ws: "refused" });
      await expect.poll(() => statuses.filter((s) => s.type === "document").map((s) => s.status), { timeout: 10_000 }).toEqual([403]);
      // (node:http, not fetch: undici adds its own sec-fetch-mode.)
      const get = (path: string, headers: Record<string, string>) =>
        new Promise<number>((resolve, reject) =>
          httpGet(`${gw.baseUrl}${path}`, { headers }, (res) => (res.resume(), resolve(res.statusCode!))).on("error", reject),
        );
      const from = (site: string, mode: string, dest: string) => ({ "sec-fetch-site": site, "sec-fetch-mode": mode, "sec-fetch-dest": dest });
      expect(await get(html, from("cross-site", "no-cors", "script"))).toBe(403);
      expect(await get("/", from("same-site", "cors", "empty"))).toBe(403);
      expect(await get("/", { origin: "http://evil.example" })).toBe(403);
      expect(await get(html, from("same-origin", "cors", "script"))).toBe(200);
      expect(await get("/", from("cross-site", "navigate", "document"))).toBe(200);
      // A link followed from elsewhere (a top-level navigation) still opens the UI, on its own origin.
      await evil.evaluate((url) => ((globalThis as any).location.href = url), `${gw.baseUrl}/`);
      await evil.getByRole("link", { name: "Overview" }).or(evil.getByLabel("Token")).first().waitFor();
    } finally {
      await evil.close();
      other.close();
    }
  });

  it("WebChat: streams the reply over MessagePack and shows the calculator call as a card; history comes back on reload", async () => {
    await page.getByRole("link", { name: "Chat" }).click();
    const box = page.getByPlaceholder(/Message the agent/);
    await box.fill("what is 12*(3+4)?");
    await box.press("Enter");
    const card = page.getByTestId("tool-card").filter({ hasText: "calculator" });
    await card.filter({ hasText: "done" }).waitFor();
    await page.locator(".msg.assistant").filter({ hasText: "The answer is 84." }).waitFor();
    await card.locator("summary").click();
    await expect(card.locator("pre").first().textContent()).resolves.toContain("12*(3+4)");
    await expect(card.locator("pre").nth(1).textContent()).resolves.toBe("84");
    // On the wire: MessagePack frames, the text streamed as chat.event before the result.
    const send = frames.findIndex((f) => f.msg.result?.text === "The answer is 84.");
    expect(send).toBeGreaterThan(0);
    const events = frames.slice(0, send).filter((f) => f.msg.method === "chat.event" && f.msg.params.requestId === frames[send]!.msg.id);
    expect(events.every((f) => f.binary)).toBe(true);
    expect(events.map((f) => f.msg.params.type)).toEqual(expect.arrayContaining(["text", "tool_use", "tool_result", "usage"]));
    expect(events.filter((f) => f.msg.params.type === "text").length).toBeGreaterThanOrEqual(2);
    await shot("chat");

    await page.reload();
    await page.getByTestId("tool-card").filter({ hasText: "calculator" }).waitFor();
    await page.locator(".msg.user").filter({ hasText: "what is 12*(3+4)?" }).waitFor();
    await page.locator(".msg.assistant").filter({ hasText: "The answer is 84." }).waitFor();
  });

  it("WebChat is usable at 360 px: nothing scrolls sideways", async () => {
    // The same tab (the token lives in this tab's sessionStorage), at a phone's width.
    await page.setViewportSize({ width: 360, height: 740 });
    try {
      await page.reload();
      await page.getByTestId("tool-card").first().waitFor();
      expect(await page.evaluate(() => (globalThis as any).document.documentElement.scrollWidth)).toBeLessThanOrEqual(360);
      await expect(page.getByPlaceholder(/Message the agent/).isVisible()).resolves.toBe(true);
      await expect(page.getByRole("link", { name: "Sessions" }).isVisible()).resolves.toBe(true);
      await shot("chat-360");
    } finally {
      await page.setViewportSize({ width: 1280, height: 800 });
    }
  });

  it("stops a long turn with the Stop button", async () => {
    const box = page.getByPlaceholder(/Message the agent/);
    await box.fill("STALL_AFTER_HEADERS: think for a long time");
    await box.press("Enter");
    const stop = page.getByRole("button", { name: "Stop" });
    await stop.waitFor();
    await page.locator(".msg.assistant.streaming").waitFor(); // the first streamed piece arrived
    await stop.click();
    await page.locator(".msg.error").filter({ hasText: "turn stopped by chat.abort" }).waitFor({ timeout: 15_000 });
    await page.getByRole("button", { name: "Send" }).waitFor();
    await gw.waitForLog((l) => l.msg === "chat.abort");
  });

  it("Sessions: the webchat session's turn shows its model calls and the tool call", async () => {
    await page.getByRole("link", { name: "Sessions" }).click();
    await page.getByLabel("filter by channel").fill("webchat");
    await page.getByLabel("filter by channel").press("Enter");
    const link = page.getByRole("link", { name: /^agent:main:webchat:default:/ });
    await link.first().click();
    const turn = page.getByTestId("turn").filter({ hasText: "what is 12*(3+4)?" });
    await turn.locator("summary").first().click();
    await expect(turn.getByTestId("model-call").count()).resolves.toBe(2);
    const call = turn.getByTestId("tool-call");
    await expect(call.textContent()).resolves.toMatch(/calculator plugin calculator.*12\*\(3\+4\).*84/s);
    await expect(turn.getByTestId("model-call").first().textContent()).resolves.toMatch(/anthropic\/.*in \/ .* out tokens/);
    // What the second call was sent: the question, the calculator's tool_use and its result (sessions.request).
    const sentBox = turn.getByTestId("model-call").nth(1).getByTestId("model-request");
    await sentBox.locator("summary").click();
    await expect(sentBox.getByTestId("request-messages").textContent()).resolves.toMatch(/12\*\(3\+4\).*tool_use.*calculator.*tool_result.*84/s);
    const stopped = page.getByTestId("turn").filter({ hasText: "STALL_AFTER_HEADERS" });
    await expect(stopped.textContent()).resolves.toContain("error");
    await shot("session");
  });

  it("Plugins: approving a pending capability shows what is granted, changes the plugin's status, and is logged with the client address", async () => {
    await page.getByRole("link", { name: "Plugins" }).click();
    const plugin = page.getByTestId("plugin-http_fetch");
    await plugin.getByRole("button", { name: "Approve…" }).waitFor();
    const before = await plugin.getByTestId("plugin-status").textContent();
    await expect(page.getByTestId("plugin-calculator").getByTestId("plugin-limits").textContent()).resolves.toMatch(
      /call budget\s*1000 ms.*memory\s*16 MiB.*in flight\s*4/s,
    );
    await shot("plugins");
    await plugin.getByRole("button", { name: "Approve…" }).click();
    const dialog = page.getByRole("dialog");
    await expect(dialog.getByTestId("approve-what").textContent()).resolves.toContain("example.com");
    await dialog.getByRole("button", { name: "Approve" }).click();
    await page.getByRole("status").filter({ hasText: "approved http_fetch" }).waitFor();
    await plugin.getByRole("button", { name: "Approve…" }).waitFor({ state: "detached" });
    await plugin.getByTestId("plugin-status").filter({ hasText: "loaded" }).waitFor();
    expect(before).not.toBe("loaded");
    const line = await gw.waitForLog((l) => l.msg === "plugin.approve: capabilities approved");
    expect(line).toMatchObject({ plugin: "http_fetch", client: "default", remote: expect.stringMatching(/127\.0\.0\.1/) });
  });

  it("Channels: the counters move after a webhook", async () => {
    await page.getByRole("link", { name: "Channels" }).click();
    const received = page.getByTestId("channel-webhook").getByTestId("counter-received").locator(".card-value");
    await received.filter({ hasText: /^0$/ }).waitFor();
    await expect(page.getByTestId("channel-webhook").textContent()).resolves.toContain(`${gw.baseUrl}/webhook/webhook`);
    const body = JSON.stringify({ peer: "alice", content: "hello from the platform", messageId: "ui-1" });
    const answer = await gw.postWebhook("webhook", undefined, body, {
      "content-type": "application/json",
      "x-exoclaw-signature": `sha256=${hmacSha256Hex(SECRET, body)}`,
    });
    expect(answer.status).toBe(200);
    await received.filter({ hasText: /^1$/ }).waitFor({ timeout: 15_000 });
    await platform.waitFor((r) => r.json?.replyTo === "ui-1", 20_000);
    await page.getByTestId("channel-webhook").getByTestId("counter-answered").locator(".card-value").filter({ hasText: /^1$/ }).waitFor({ timeout: 15_000 });
    // A bad signature: the channel's last warning shows, pushed (the page does not poll channels.list).
    const bad = await gw.postWebhook("webhook", undefined, body.replace("ui-1", "ui-2"), {
      "content-type": "application/json",
      "x-exoclaw-signature": `sha256=${"0".repeat(64)}`,
    });
    expect(bad.status).toBe(401);
    await page
      .getByTestId("channel-webhook")
      .getByTestId("channel-health")
      .filter({ hasText: /bad signature/ })
      .waitFor({ timeout: 15_000 });
    expect(sent.filter((s) => s.msg.method === "channels.list")).toEqual([]);
    await expect(page.getByTestId("dead-letters").textContent()).resolves.toContain("The bus is off");
    await shot("channels");
  });

  it("Agents lists the default agent with its tools, pushed by the gateway (agents topic), not polled", async () => {
    await page.getByRole("link", { name: "Agents" }).click();
    const agent = page.getByTestId("agent-main");
    await expect(agent.textContent()).resolves.toMatch(/main.*default.*anthropic\//s);
    expect(sent.filter((s) => s.msg.method === "events.subscribe" && s.msg.params.topics.includes("agents"))).toHaveLength(1);
    expect(sent.filter((s) => s.msg.method === "agents.list")).toEqual([]);
    await shot("agents");
  });

  it("Logs: the live tail shows the gateway's lines, never the token", async () => {
    await page.getByRole("link", { name: "Logs" }).click();
    const lines = page.getByTestId("log-lines");
    await lines.locator(".log").filter({ hasText: "plugin.approve: capabilities approved" }).waitFor();
    await page.getByLabel("minimum level").selectOption("warn");
    await page.waitForTimeout(1500);
    const warnOnly = await lines.locator(".lvl").allTextContents();
    expect(warnOnly.every((l) => l === "warn" || l === "error" || l === "fatal")).toBe(true);
    await page.getByLabel("minimum level").selectOption("debug");
    await lines.locator(".log").first().waitFor();
    expect(await lines.textContent()).not.toContain(TOKEN);
    await shot("logs");
  });

  it("Sessions: a session written elsewhere appears in the open list from the push (its row), without reading the list again", async () => {
    await page.goto(`${gw.baseUrl}/#/sessions`);
    await page
      .getByRole("link", { name: /^agent:main:webchat:default:/ })
      .first()
      .waitFor();
    await page.waitForTimeout(500);
    const reads = () => sent.filter((s) => s.msg.method === "sessions.list").length;
    const before = reads();
    const client = await RpcClient.connect(gw.gateway.url, { authorization: `Bearer ${TOKEN}` });
    try {
      const { response } = await client.call("chat.send", { content: "hello from another client", peer: "list-push" });
      const key = response.msg.result.sessionKey as string;
      const row = page.getByRole("row").filter({ has: page.getByRole("link", { name: key }) });
      await row.waitFor({ timeout: 15_000 });
      await expect(row.textContent()).resolves.toContain("list-push");
      expect(reads()).toBe(before);
    } finally {
      client.close();
    }
  });

  it("Sessions: delete asks for confirmation and is logged with the client address", async () => {
    await page.goto(`${gw.baseUrl}/#/sessions`);
    const key = (await page
      .getByRole("link", { name: /^agent:main:webchat:default:/ })
      .first()
      .textContent())!;
    await page.getByRole("link", { name: key }).click();
    await page.getByRole("button", { name: "Delete…" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Cancel" }).click();
    await page.getByRole("button", { name: "Delete…" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Delete" }).click();
    await page.waitForURL(/#\/sessions$/);
    const line = await gw.waitForLog((l) => l.msg === "sessions.delete");
    expect(line).toMatchObject({ sessionKey: key, deleted: true, client: "default", remote: expect.stringMatching(/127\.0\.0\.1/) });
    await page.getByRole("link", { name: key }).waitFor({ state: "detached", timeout: 15_000 });
  });
});
