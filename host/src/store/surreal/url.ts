import { isAbsolute } from "node:path";
import { StoreError } from "../errors.js";
import { redactUrl } from "../../log/index.js";

/** Where a SurrealDB session log lives, parsed from its URL and options. */
export interface SurrealTarget {
  /** `mem` (embedded, in memory), `surrealkv` or `rocksdb` (embedded, on disk) or `ws`/`wss` (a server). */
  engine: "mem" | OnDiskEngine | "ws" | "wss";
  /** The URL handed to the SDK: credentials removed; `surrealkv:///abs/path`, `mem://`, `ws://host:port/rpc`. */
  url: string;
  /** The URL for messages and logs: like `url`, without query string either. Never contains credentials. */
  displayUrl: string;
  /** Absolute directory of a `surrealkv` or `rocksdb` store. */
  path?: string;
  /**
   * `surrealkv`/`rocksdb` only: whether appends go through exoclaw's write-ahead journal in front of the
   * engine (`store/journal/`); default true, `?journal=off` turns it off.
   */
  journal?: boolean;
  namespace: string;
  database: string;
  /** Sign-in for server mode (from the options, else from the URL's user info). */
  credentials?: { username: string; password: string };
}

/**
 * The embedded on-disk engines of `@surrealdb/node` (SurrealDB 3.0.2): SurrealKV and RocksDB.
 * Both are used the same way (behind exoclaw's journal); they differ in memory bounds (see
 * `memory.ts`) and in their write-ahead log's format (see `wal-check.ts`, `rocksdb-wal.ts`).
 */
export type OnDiskEngine = "surrealkv" | "rocksdb";

/** True for `surrealkv` and `rocksdb` (an embedded datastore in a directory). */
export function isOnDiskEngine(engine: SurrealTarget["engine"]): engine is OnDiskEngine {
  return engine === "surrealkv" || engine === "rocksdb";
}

/** Options that complete a URL. */
export interface SurrealUrlOptions {
  namespace?: string;
  database?: string;
  username?: string;
  password?: string;
}

/** Default namespace and database. */
export const DEFAULT_NAMESPACE = "exoclaw";
export const DEFAULT_DATABASE = "sessions";

/** The URL with any user info, query string and fragment removed, for messages (one copy, in `log/`). */
export { redactUrl };

/**
 * Parses a SurrealDB URL: `mem://`, `surrealkv:///abs/dir[?sync=every|never|5s][&journal=on|off]` (SurrealKV's
 * WAL sync policy; default `every`, i.e. each commit is fsynced; exoclaw's journal, default on),
 * `rocksdb:///abs/dir[?…]` (the same options, RocksDB engine), `ws://host:port[/rpc]`, `wss://…`. Credentials may come as options or as URL user info
 * (`ws://user:pass@host:8000`, percent-encoded); options win. They are removed from `url`.
 * @throws StoreError `invalid_argument` for another scheme, a relative surrealkv path, a server
 *   URL without credentials, or a namespace/database name other than letters, digits and `_`
 */
export function parseSurrealUrl(url: string, options: SurrealUrlOptions = {}): SurrealTarget {
  const namespace = options.namespace ?? DEFAULT_NAMESPACE;
  const database = options.database ?? DEFAULT_DATABASE;
  for (const [what, v] of [
    ["namespace", namespace],
    ["database", database],
  ] as const) {
    if (!/^[A-Za-z0-9_]+$/.test(v)) throw new StoreError("invalid_argument", `SurrealDB ${what} may use letters, digits and _: ${JSON.stringify(v)}`);
  }
  const display = redactUrl(url);
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(String(url))?.[1]?.toLowerCase();
  if (scheme === "mem") return { engine: "mem", url: "mem://", displayUrl: "mem://", namespace, database };
  if (scheme === "surrealkv" || scheme === "rocksdb") {
    const [path = "", query] = String(url).slice(`${scheme}://`.length).split("?", 2);
    if (!String(url).toLowerCase().startsWith(`${scheme}://`) || !isAbsolute(path)) {
      throw new StoreError("invalid_argument", `a ${scheme} URL needs an absolute directory, like ${scheme}:///var/lib/exoclaw/data; got ${display}`);
    }
    let sync: string | undefined;
    let journal = true;
    for (const param of query === undefined ? [] : query.split("&")) {
      const m = /^(sync|journal)=(.*)$/.exec(param);
      if (m?.[1] === "sync" && /^(every|never|\d+(ms|s|m))$/.test(m[2]!)) sync = m[2];
      else if (m?.[1] === "journal" && /^(on|off)$/.test(m[2]!)) journal = m[2] === "on";
      else {
        throw new StoreError(
          "invalid_argument",
          `a ${scheme} URL takes only ?sync=every|never|<duration> (default every: each commit is fsynced) and &journal=on|off (default on); got ${display}`,
        );
      }
    }
    const full = `${scheme}://${path}${sync !== undefined ? `?sync=${sync}` : ""}`;
    return { engine: scheme, url: full, displayUrl: full, path, journal, namespace, database };
  }
  if (scheme === "ws" || scheme === "wss") {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      throw new StoreError("invalid_argument", `not a valid SurrealDB server URL: ${display}`);
    }
    const fromUrl = u.username ? { username: decodeURIComponent(u.username), password: decodeURIComponent(u.password) } : undefined;
    u.username = "";
    u.password = "";
    if (!u.pathname.endsWith("/rpc")) u.pathname = u.pathname.replace(/\/$/, "") + "/rpc";
    const username = options.username ?? fromUrl?.username;
    const password = options.password ?? fromUrl?.password;
    if (!username || password === undefined) {
      throw new StoreError("invalid_argument", `SurrealDB server ${redactUrl(u.toString())} needs a username and password (options or user info in the URL)`);
    }
    return { engine: scheme, url: u.toString(), displayUrl: redactUrl(u.toString()), namespace, database, credentials: { username, password } };
  }
  throw new StoreError("invalid_argument", `unsupported SurrealDB URL ${display}: use mem://, surrealkv:///abs/dir, rocksdb:///abs/dir, ws:// or wss://`);
}
