/**
 * Serves the Control UI (the `ui/` package, built by `npm install` into `ui/dist`) at `/`:
 * `index.html` (no-cache: it names the current hashed assets) and `/assets/<name>-<hash>.<ext>`
 * (immutable for a year: a new build gets new names). Every answer carries a strict
 * Content-Security-Policy (scripts and styles only from the gateway's own origin, nothing
 * inline, no framing) and `nosniff`. The files are read once, on the first UI request, and kept
 * in memory with a gzip copy (served when the request accepts gzip); the UI is small (~30 KB gz).
 * The page is hash-routed (`/#/sessions`), so no other path is the UI's. Other origins' pages
 * get none of it ({@link crossOriginRefusal}: 403), as the WebSocket upgrade refuses them (auth.ts).
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { extname, join } from "node:path";
import { gzipSync } from "node:zlib";
import type { HttpAnswer, HttpHandler, HttpRequestHead } from "./types.js";

/**
 * The Content-Security-Policy of every UI answer. `connect-src 'self'` admits the page's own
 * `ws(s)://` origin (CSP Level 3, section 6.7.2.4: `'self'` matches ws/wss of the same host and
 * port). No `'unsafe-inline'` anywhere: an injected `<script>` or `onclick=` does not run.
 */
export const UI_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

/** Content types by file extension (RFC 9239 for JavaScript). */
const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".json": "application/json",
  ".map": "application/json",
  ".woff2": "font/woff2",
  ".txt": "text/plain; charset=utf-8",
};

/** Headers every UI answer carries. */
const SECURITY_HEADERS: Record<string, string> = {
  "content-security-policy": UI_CSP,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
};

const NO_CACHE = "no-cache";
const IMMUTABLE = "public, max-age=31536000, immutable";

interface UiFile {
  type: string;
  cache: string;
  body: Buffer;
  /** Gzip copy, when it is smaller. */
  gzip?: Buffer;
}

/** Options of {@link createUiRoutes}. */
export interface UiRoutesOptions {
  /** The built UI (`<package root>/ui/dist`): `index.html` and `assets/`. */
  dir: string;
}

/**
 * Reads the built UI and answers `GET`/`HEAD` of `/`, `/index.html` and `/assets/*` (405 for
 * other methods on them; every other path is not its route).
 * @returns the routes, or undefined when `dir` has no `index.html` (UI not built: `/` answers 404)
 */
export function createUiRoutes(options: UiRoutesOptions): HttpHandler | undefined {
  const index = join(options.dir, "index.html");
  if (!existsSync(index)) return undefined;
  // Read on the first request, not at start-up (the gateway's ready time does not pay for the UI).
  const rootFiles = new Set(readdirSync(options.dir).map((n) => `/${n}`));
  const isUiPath = (path: string) => path === "/" || path.startsWith("/assets/") || rootFiles.has(path);
  let loaded: Map<string, UiFile> | undefined;
  const load = (): Map<string, UiFile> => {
    const files = new Map<string, UiFile>();
    const add = (path: string, file: string, cache: string) => {
      const body = readFileSync(file);
      const type = CONTENT_TYPES[extname(file).toLowerCase()] ?? "application/octet-stream";
      const compressible = /^(text\/|application\/json|image\/svg)/.test(type);
      const gz = compressible && body.byteLength > 512 ? gzipSync(body, { level: 9 }) : undefined;
      files.set(path, { type, cache, body, ...(gz !== undefined && gz.byteLength < body.byteLength ? { gzip: gz } : {}) });
    };
    add("/", index, NO_CACHE);
    files.set("/index.html", files.get("/")!);
    const assets = join(options.dir, "assets");
    if (existsSync(assets)) {
      for (const name of readdirSync(assets)) {
        const file = join(assets, name);
        if (statSync(file).isFile()) add(`/assets/${name}`, file, IMMUTABLE);
      }
    }
    for (const name of readdirSync(options.dir)) {
      const file = join(options.dir, name);
      if (name !== "index.html" && statSync(file).isFile()) add(`/${name}`, file, NO_CACHE);
    }
    return files;
  };
  return {
    route(head: HttpRequestHead): HttpAnswer | null {
      if (!isUiPath(head.path)) return null;
      const refused = crossOriginRefusal(head.headers);
      if (refused !== undefined) {
        return { status: 403, headers: { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store", ...SECURITY_HEADERS }, body: refused };
      }
      const file = (loaded ??= load()).get(head.path);
      if (file === undefined) {
        if (!head.path.startsWith("/assets/")) return null;
        return { status: 404, headers: { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store", ...SECURITY_HEADERS }, body: "not found" };
      }
      if (head.method !== "GET" && head.method !== "HEAD") {
        return { status: 405, headers: { allow: "GET, HEAD", "content-type": "text/plain; charset=utf-8", ...SECURITY_HEADERS }, body: "use GET" };
      }
      const gzip = file.gzip !== undefined && /\bgzip\b/.test(head.headers["accept-encoding"] ?? "");
      const body = gzip ? file.gzip! : file.body;
      return {
        status: 200,
        headers: {
          "content-type": file.type,
          "cache-control": file.cache,
          vary: "accept-encoding",
          ...(gzip ? { "content-encoding": "gzip" } : {}),
          ...SECURITY_HEADERS,
        },
        body: head.method === "HEAD" ? "" : body,
      };
    },
    handle: () => Promise.resolve({ status: 404, headers: {}, body: "" }),
  };
}

/**
 * Refuses the UI's files to other origins (Fetch Metadata, W3C "Fetch Metadata Request Headers",
 * and `Origin`, RFC 6454): a request a browser makes for a page of another origin (or another
 * port of this host: `same-site`) — a `<script src>`, `fetch()`, `<iframe>`, `<img>` — is refused;
 * only the gateway's own pages (`same-origin`), direct visits (`none`: typed, bookmarked) and
 * top-level navigations (a link followed: the page then runs on the gateway's own origin) pass.
 * Requests without these headers (curl, older browsers) pass: they are no browser page's doing,
 * and `frame-ancestors 'none'` still stops framing. An `Origin` other than the `Host` the request
 * was sent to is refused too.
 * @param headers lower-case request headers
 * @returns why it is refused (the 403 body), or undefined to serve it
 */
export function crossOriginRefusal(headers: Record<string, string>): string | undefined {
  const site = headers["sec-fetch-site"];
  if (site !== undefined && site !== "same-origin" && site !== "none") {
    const topLevel = headers["sec-fetch-mode"] === "navigate" && (headers["sec-fetch-dest"] ?? "document") === "document";
    if (!topLevel) return `refused: a ${site} request (${headers["sec-fetch-dest"] ?? "?"}) for the Control UI; it is served to its own origin only`;
  }
  const origin = headers.origin;
  if (origin !== undefined && origin !== "null") {
    let host: string | undefined;
    try {
      host = new URL(origin).host;
    } catch {
      host = undefined;
    }
    if (host === undefined || host !== headers.host?.toLowerCase())
      return "refused: Origin is not this gateway's; the Control UI is served to its own origin only";
  }
  return undefined;
}
