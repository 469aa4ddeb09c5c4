// http_fetch: GET or POST a URL on a host the operator granted, through the host's http
// function (the host checks the grant on every request and redirect and caps the body at
// 4 MiB). The result is text for the model: HTML is reduced to readable text, other text is
// returned as is, and everything is cut at `max_chars`.

import { httpRequest, runTool, ToolResult, Value } from "@exoclaw/plugin-sdk/assembly";
import { htmlToText } from "./html";

const DEFAULT_MAX_CHARS: i32 = 20000;
const LIMIT_MAX_CHARS: i32 = 100000;
const MAX_URL_CHARS: i32 = 4096;
const MAX_BODY_CHARS: i32 = 1024 * 1024;

function isTextual(type: string): bool {
  return type.startsWith("text/") || type.includes("json") || type.includes("xml") || type.includes("javascript") ||
    type.includes("x-www-form-urlencoded") || type.includes("yaml") || type.includes("csv") || type.length == 0;
}

function handle(tool: string, input: Value): ToolResult {
  if (tool != "http_fetch") return ToolResult.error("unknown tool '" + (tool.length <= 40 ? tool : tool.substring(0, 40) + "...") + "'");
  if (!input.isMap()) return ToolResult.error("input must be an object {url, method?, body?, headers?, max_chars?}");
  const urlV = input.get("url");
  if (urlV == null || !urlV.isString()) return ToolResult.error("'url' must be a string like https://example.com/page");
  const url = urlV.strValue.trim();
  if (url.length > MAX_URL_CHARS) return ToolResult.error("'url' is longer than " + MAX_URL_CHARS.toString() + " characters");
  const lower = url.toLowerCase();
  if (!lower.startsWith("http://") && !lower.startsWith("https://")) return ToolResult.error("'url' must start with http:// or https://");

  const methodV = input.get("method");
  let method = "GET";
  if (methodV != null && !methodV.isNil()) {
    if (!methodV.isString()) return ToolResult.error("'method' must be \"GET\" or \"POST\"");
    method = methodV.strValue.toUpperCase();
    if (method != "GET" && method != "POST") return ToolResult.error("'method' must be \"GET\" or \"POST\"");
  }

  let maxChars = DEFAULT_MAX_CHARS;
  const maxV = input.get("max_chars");
  if (maxV != null && !maxV.isNil()) {
    const m = maxV.asNumber();
    if (isNaN(m) || m < 100) return ToolResult.error("'max_chars' must be a number of at least 100");
    maxChars = m > <f64>LIMIT_MAX_CHARS ? LIMIT_MAX_CHARS : <i32>m;
  }

  const headers = new Map<string, string>();
  const hV = input.get("headers");
  if (hV != null && !hV.isNil()) {
    if (!hV.isMap()) return ToolResult.error("'headers' must be an object of header names to string values");
    for (let i = 0; i < hV.length && i < 50; i++) {
      const k = hV.keyAt(i);
      const v = hV.at(i);
      if (!k.isString() || !v.isString()) return ToolResult.error("'headers' values must be strings");
      if (k.strValue.length > 256 || v.strValue.length > 8192) return ToolResult.error("header '" + k.strValue.substring(0, 40) + "' is too long");
      headers.set(k.strValue.toLowerCase(), v.strValue);
    }
  }
  if (!headers.has("accept")) headers.set("accept", "text/html, text/plain, application/json;q=0.9, */*;q=0.5");

  let body: Uint8Array | null = null;
  const bV = input.get("body");
  if (bV != null && !bV.isNil()) {
    if (!bV.isString()) return ToolResult.error("'body' must be a string (JSON as text, for example)");
    if (method != "POST") return ToolResult.error("'body' is only sent with method POST");
    if (bV.strValue.length > MAX_BODY_CHARS) return ToolResult.error("'body' is longer than 1 MiB");
    body = Uint8Array.wrap(String.UTF8.encode(bV.strValue));
    if (!headers.has("content-type")) {
      const t = bV.strValue.trimStart();
      headers.set("content-type", t.startsWith("{") || t.startsWith("[") ? "application/json" : "text/plain; charset=utf-8");
    }
  }

  const r = httpRequest(method, url, headers, body);
  if (!r.ok) {
    if (r.error.includes("not granted")) {
      return ToolResult.error("cannot fetch " + url + ": " + r.error + ". The operator grants hosts to plugin 'http_fetch' in exoclaw.toml ([plugins.grants.http_fetch]) and approves them with `exoclaw plugin approve`.");
    }
    return ToolResult.error("cannot fetch " + url + ": " + r.error);
  }

  const type = r.headers.has("content-type") ? r.headers.get("content-type").toLowerCase() : "";
  const head = "HTTP " + r.status.toString() + (type.length > 0 ? " (" + type + ")" : "") + ", " + r.body.length.toString() + " bytes from " + url;
  const failed = r.status >= 400;
  if (!isTextual(type)) {
    return new ToolResult(head + "\n\n[binary content, not shown]", failed);
  }
  let text = r.text();
  let title = "";
  if (type.includes("html") || (type.length == 0 && text.trimStart().startsWith("<"))) {
    const h = htmlToText(text);
    title = h.title;
    text = h.text;
  }
  let out = head + (title.length > 0 ? "\ntitle: " + title : "") + "\n\n";
  if (text.length > maxChars) {
    // Do not split a surrogate pair.
    const last = text.charCodeAt(maxChars - 1);
    const cut = last >= 0xd800 && last <= 0xdbff ? maxChars - 1 : maxChars;
    out += text.substring(0, cut) + "\n\n[cut: " + maxChars.toString() + " of " + text.length.toString() + " characters shown; raise max_chars (up to " + LIMIT_MAX_CHARS.toString() + ") for more]";
  } else {
    out += text;
  }
  return new ToolResult(out, failed);
}

export function call(): i32 {
  return runTool(handle);
}
