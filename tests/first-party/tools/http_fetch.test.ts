// http_fetch through the real sandbox and the real host HTTP service, against a local server:
// HTML reduced to text, JSON and text passed through, POST bodies, the size cap, status codes,
// binary content, and hosts outside the grant.
import http from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { toolClient, type ToolClient } from "./support.js";

const PAGE = `<!doctype html>
<html><head><title>The  Example &amp; Co.</title>
<style>body { color: red; }</style>
<script>var secret = "do not show";</script>
</head>
<body>
  <!-- a comment -->
  <nav><a href="/">Home</a></nav>
  <h1>Hello,&nbsp;world</h1>
  <p>Prices &lt; &#36;10 &mdash; caf&eacute; &#x1F600; &copy; 2025</p>
  <ul><li>one</li><li>two</li></ul>
  <script type="module">console.log("no")</script>
  <p>a &lt; b and c > d</p>
  <table><tr><td>cell 1</td><td>cell 2</td></tr></table>
  <noscript>enable JS</noscript>
</body></html>`;

let server: http.Server;
let base = "";
let c: ToolClient;
let seen: { method: string; body: string; type: string | undefined }[] = [];

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (d: Buffer) => chunks.push(d));
    req.on("end", () => {
      seen.push({ method: req.method ?? "", body: Buffer.concat(chunks).toString(), type: req.headers["content-type"] });
      const u = new URL(req.url ?? "/", "http://x");
      if (u.pathname === "/page") res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(PAGE);
      else if (u.pathname === "/json") res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true,"items":[1,2]}');
      else if (u.pathname === "/echo") res.writeHead(201, { "content-type": "text/plain" }).end(`got ${req.method} ${Buffer.concat(chunks).toString()}`);
      else if (u.pathname === "/long") res.writeHead(200, { "content-type": "text/plain" }).end("word ".repeat(20_000));
      else if (u.pathname === "/png") res.writeHead(200, { "content-type": "image/png" }).end(Buffer.alloc(300, 1));
      else if (u.pathname === "/huge") res.writeHead(200, { "content-type": "text/plain" }).end(Buffer.alloc(5 * 1024 * 1024, 0x61));
      else res.writeHead(404, { "content-type": "text/html" }).end("<h1>Not here</h1>");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  c = await toolClient("http_fetch", { grant: { http: { hosts: ["127.0.0.1"], methods: ["GET", "POST"] } }, limits: { timeoutMs: 5_000 } });
});
afterAll(async () => {
  await c?.close();
  server?.closeAllConnections();
  await new Promise<void>((resolve) => server?.close(() => resolve()));
});

describe("http_fetch", () => {
  it("reduces HTML to readable text: no scripts, styles or tags, entities decoded, whitespace collapsed", async () => {
    const r = await c.call("http_fetch", { url: `${base}/page` });
    expect(r.isError).toBe(false);
    const [head, title, empty, ...body] = r.content.split("\n");
    expect(head).toBe(`HTTP 200 (text/html; charset=utf-8), ${Buffer.byteLength(PAGE)} bytes from ${base}/page`);
    expect(title).toBe("title: The Example & Co.");
    expect(empty).toBe("");
    expect(body.join("\n")).toBe("Home\n\nHello, world\n\nPrices < $10 — café 😀 © 2025\n\n- one\n- two\n\na < b and c > d\n\ncell 1 cell 2");
    expect(r.content).not.toMatch(/secret|color: red|console|enable JS|comment|<[a-z/!]/);
  });

  it("passes JSON and text through, and POSTs bodies with a content type", async () => {
    expect((await c.call("http_fetch", { url: `${base}/json` })).content).toBe(
      `HTTP 200 (application/json), 25 bytes from ${base}/json\n\n{"ok":true,"items":[1,2]}`,
    );
    seen = [];
    const r = await c.call("http_fetch", { url: `${base}/echo`, method: "POST", body: '{"a":1}' });
    expect(r).toEqual({ content: `HTTP 201 (text/plain), 16 bytes from ${base}/echo\n\ngot POST {"a":1}`, isError: false });
    expect(seen[0]).toEqual({ method: "POST", body: '{"a":1}', type: "application/json" });
    await c.call("http_fetch", { url: `${base}/echo`, method: "POST", body: "hi", headers: { "Content-Type": "text/x-custom" } });
    expect(seen[1]?.type).toBe("text/x-custom");
  });

  it("cuts long text at max_chars and says so", async () => {
    const r = await c.call("http_fetch", { url: `${base}/long`, max_chars: 1000 });
    expect(r.content).toMatch(/\n\n\[cut: 1000 of 100000 characters shown; raise max_chars \(up to 100000\) for more\]$/);
    const d = await c.call("http_fetch", { url: `${base}/long` });
    expect(d.content).toContain("[cut: 20000 of 100000 characters shown");
  });

  it("marks HTTP errors, does not show binary content, and reports bodies over the host's cap", async () => {
    expect(await c.call("http_fetch", { url: `${base}/missing` })).toEqual({
      content: `HTTP 404 (text/html), 17 bytes from ${base}/missing\n\nNot here`,
      isError: true,
    });
    expect(await c.call("http_fetch", { url: `${base}/png` })).toEqual({
      content: `HTTP 200 (image/png), 300 bytes from ${base}/png\n\n[binary content, not shown]`,
      isError: false,
    });
    const huge = await c.call("http_fetch", { url: `${base}/huge` });
    expect(huge.isError).toBe(true);
    expect(huge.content).toMatch(/^cannot fetch .*: .*over the 4194304-byte limit/);
  });

  it("refuses hosts and methods outside the grant, and bad input, with clear messages", async () => {
    const other = await c.call("http_fetch", { url: "http://localhost:1/" });
    expect(other.isError).toBe(true);
    expect(other.content).toMatch(
      /^cannot fetch http:\/\/localhost:1\/: http_request: host 'localhost' is not granted .* The operator grants hosts to plugin 'http_fetch' in exoclaw.toml/,
    );
    const getOnly = await toolClient("http_fetch", { grant: { http: { hosts: ["127.0.0.1"], methods: ["GET"] } } });
    expect((await getOnly.call("http_fetch", { url: `${base}/echo`, method: "POST", body: "x" })).content).toMatch(/method POST is not granted/);
    await getOnly.close();
    const none = await toolClient("http_fetch", { grant: {} });
    expect((await none.call("http_fetch", { url: `${base}/page` })).content).toMatch(/capability 'http' is not granted/);
    await none.close();
    expect((await c.call("http_fetch", { url: "file:///etc/passwd" })).content).toBe("'url' must start with http:// or https://");
    expect((await c.call("http_fetch", { url: `${base}/page`, method: "DELETE" })).content).toBe('\'method\' must be "GET" or "POST"');
    expect((await c.call("http_fetch", { url: `${base}/page`, body: "x" })).content).toBe("'body' is only sent with method POST");
    expect((await c.call("http_fetch", {})).isError).toBe(true);
  });
});
