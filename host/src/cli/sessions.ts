/**
 * `exoclaw sessions list|show|search|prune`: session transcripts for operators, and retention.
 *
 * Reads the configured store directly (`[store]`, `EXOCLAW_STORE`, default
 * `surrealkv://<state dir>/data`). An embedded SurrealDB directory can be open in one process
 * only, so while a gateway runs on it — and always for the `memory` store, which lives inside
 * the gateway — the commands ask that gateway over its WebSocket instead (`sessions.list`,
 * `chat.history`, `sessions.search`; address and token from the same config).
 */
import { existsSync } from "node:fs";
import { InvalidArgumentError, type Command } from "commander";
import { loadConfig, type Config } from "../config/index.js";
import { DURATION_HINT, parseDuration } from "../util/index.js";
import { BUILTIN_PLUGINS_DIR } from "../paths.js";
import { connectGateway } from "./gateway-client.js";
import {
  MEMORY_STORE_URL,
  openSessionLog,
  StoreError,
  type PruneResult,
  type SearchHit,
  type SessionEvent,
  type SessionInfo,
  type SessionLog,
  type SessionPage,
} from "../store/index.js";

/** Where CLI subcommands write; tests substitute buffers. */
export interface SessionsCliIo {
  out(line: string): void;
  err(line: string): void;
  env: NodeJS.ProcessEnv;
}

const processIo: SessionsCliIo = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  env: process.env,
};

/** One page of a session's events; `nextAfterSeq` is set when more may follow. */
export interface HistoryPage {
  sessionKey: string;
  events: SessionEvent[];
  nextAfterSeq?: number;
}

/** What the commands read from: the store itself, or a running gateway. */
export interface SessionsSource {
  /** `store` or `gateway <url>`, for messages. */
  readonly via: string;
  list(options: { agent?: string; channel?: string; peer?: string; cursor?: string; limit?: number }): Promise<SessionPage>;
  history(sessionKey: string, options: { afterSeq?: number; limit?: number }): Promise<HistoryPage>;
  search(query: string, options: { limit?: number; sessionKey?: string }): Promise<SearchHit[]>;
  /** Retention: removes (or with `dryRun` counts) sessions idle longer than `olderThanMs`. */
  prune(olderThanMs: number, dryRun: boolean): Promise<PruneReport>;
  close(): Promise<void>;
}

/** What `exoclaw sessions prune` reports: the prune's counts and its cutoff (ISO 8601). */
export interface PruneReport extends PruneResult {
  idleBefore: string;
  dryRun: boolean;
}

function storeSource(log: SessionLog): SessionsSource {
  return {
    via: "store",
    list: (o) => log.listSessions(o),
    async history(sessionKey, o) {
      const limit = o.limit ?? 100;
      const events = await log.read(sessionKey, { afterSeq: o.afterSeq ?? 0, limit: limit + 1 });
      if (events.length <= limit) return { sessionKey, events };
      const page = events.slice(0, limit);
      return { sessionKey, events: page, nextAfterSeq: page[page.length - 1]!.seq };
    },
    search: (q, o) => log.search(q, o),
    async prune(olderThanMs, dryRun) {
      const idleBeforeMs = Date.now() - olderThanMs;
      return { ...(await log.prune({ idleBeforeMs, dryRun })), idleBefore: new Date(idleBeforeMs).toISOString(), dryRun };
    },
    close: () => log.close(),
  };
}

/** The running gateway as a source, through its three read methods. */
async function gatewaySource(config: Config): Promise<SessionsSource> {
  const { url, call, close } = await connectGateway(config);
  return {
    via: `gateway ${url}`,
    list: (o) => call<SessionPage>("sessions.list", o),
    history: (sessionKey, o) => call<HistoryPage>("chat.history", { sessionKey, ...o }),
    search: async (query, o) => (await call<{ hits: SearchHit[] }>("sessions.search", { query, ...o })).hits,
    prune: (olderThanMs, dryRun) => call<PruneReport>("sessions.prune", { olderThanMs, dryRun }),
    close,
  };
}

/**
 * Opens the configured store, or — when it is the in-process `memory` store, or an embedded
 * directory a running gateway holds — a connection to that gateway.
 * @throws StoreError / Error when neither is reachable
 */
export async function openSessionsSource(config: Config): Promise<SessionsSource> {
  if (config.store.url === MEMORY_STORE_URL) return gatewaySource(config);
  const dir = /^(?:surrealkv|rocksdb):\/\/([^?]*)/.exec(config.store.url)?.[1];
  // Reading must not create a database: a missing directory means no gateway ever ran here.
  if (dir !== undefined && !existsSync(dir)) throw new Error(`no session store at ${dir} (the gateway creates it when it first starts)`);
  try {
    return storeSource(await openSessionLog(config.store));
  } catch (err) {
    const locked = err instanceof StoreError && err.code === "unavailable" && /another exoclaw process|lock/i.test(err.message);
    if (!locked) throw err;
    try {
      return await gatewaySource(config);
    } catch (gwErr) {
      throw new Error(`${err.message}; and ${(gwErr as Error).message}`);
    }
  }
}

/**
 * Where `prune` runs: the running gateway when one answers at the configured address (its
 * runtime then drops the removed sessions' cached history), else the store directly (as
 * {@link openSessionsSource}).
 * @throws Error when that gateway refuses the token (`connectGateway`); StoreError / Error as
 *   {@link openSessionsSource}
 */
async function openPruneSource(config: Config): Promise<SessionsSource> {
  try {
    return await gatewaySource(config);
  } catch (err) {
    // A gateway is there but refuses this token: pruning the store behind its back is not the fix.
    if (/refused the connection/.test((err as Error).message)) throw err;
    return openSessionsSource(config);
  }
}

/** `exoclaw sessions prune` as text lines. */
export function formatPrune(r: PruneReport, via: string): string[] {
  const what = `${r.sessions} session${r.sessions === 1 ? "" : "s"} (${r.events} event${r.events === 1 ? "" : "s"}) idle since before ${r.idleBefore}`;
  const lines = [`${r.dryRun ? "would remove" : "removed"} ${what} (via ${via})`];
  if (r.kept > 0) lines.push(`kept ${r.kept} idle session${r.kept === 1 ? "" : "s"} with unfinished work (a turn not ended or a reply still owed)`);
  if (r.dryRun && r.sessions > 0) lines.push("run again without --dry-run to remove them");
  return lines;
}

/** One line of text: newlines shown as ⏎, cut to `max` characters. */
function oneLine(text: string, max: number): string {
  const flat = text.replace(/\r?\n/g, "⏎");
  return flat.length > max ? `${flat.slice(0, Math.max(0, max - 1))}…` : flat;
}

/** The readable part of an event, on one line. */
export function describeEvent(e: SessionEvent): string {
  switch (e.kind) {
    case "message_received":
      return e.data.content;
    case "assistant_text":
      return e.data.text;
    case "tool_use":
      return `${e.data.name} ${JSON.stringify(e.data.input)}`;
    case "tool_result":
      return `${e.data.isError ? "[error] " : ""}${e.data.content}`;
    case "usage":
      return `input ${e.data.inputTokens}, output ${e.data.outputTokens} tokens${(e.data.failover ?? []).map((f) => `; ${f.from} -> ${f.to} (${f.reason}${f.discard ? ", partial answer discarded" : ""})`).join("")}`;
    case "error":
      return `${e.data.code} ${e.data.message}`;
    case "turn_started":
      return "";
    case "turn_ended":
      return e.data.stopReason;
    case "compaction":
      return `up to seq ${e.data.upToSeq}: ${e.data.summary}`;
    case "reset":
      return e.data.reason ?? "";
    case "approval_pending":
      return `${e.data.id}: ${e.data.tool} ${JSON.stringify(e.data.input)}`;
    case "approval_resolved":
      return `${e.data.id}: ${e.data.approved ? "approved" : "denied"} by ${e.data.by}`;
  }
}

/** Rows as columns separated by two spaces; the last column is not padded. */
function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((cells) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd(),
  );
}

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");

/** `exoclaw sessions list` as table lines. */
export function formatSessionList(page: SessionPage): string[] {
  if (page.sessions.length === 0) return ["no sessions"];
  const rows = [["SESSION", "AGENT", "CHANNEL", "ACCOUNT", "PEER", "EVENTS", "UPDATED"]];
  for (const s of page.sessions as SessionInfo[]) rows.push([s.sessionKey, s.agent, s.channel, s.account, s.peer, String(s.lastSeq), iso(s.updatedAt)]);
  const out = table(rows);
  if (page.nextCursor) out.push(`more: exoclaw sessions list --cursor ${page.nextCursor}`);
  return out;
}

/** `exoclaw sessions show` as table lines; texts are cut at `width` characters unless `width` is 0. */
export function formatHistory(page: HistoryPage, width = 100): string[] {
  if (page.events.length === 0) return [`no events in ${page.sessionKey}`];
  const rows = [["SEQ", "TIME", "KIND", "RUN", "TEXT"]];
  for (const e of page.events) {
    const text = describeEvent(e);
    rows.push([String(e.seq), iso(e.at), e.kind, (e.runId ?? "").slice(0, 8), width > 0 ? oneLine(text, width) : text]);
  }
  const out = table(rows);
  if (page.nextAfterSeq !== undefined) out.push(`more: exoclaw sessions show '${page.sessionKey}' --after-seq ${page.nextAfterSeq}`);
  return out;
}

/** `exoclaw sessions search` as table lines. */
export function formatHits(hits: SearchHit[], width = 100): string[] {
  if (hits.length === 0) return ["no matches"];
  const rows = [["SCORE", "SESSION", "SEQ", "KIND", "TEXT"]];
  for (const h of hits) rows.push([h.score.toFixed(2), h.event.sessionKey, String(h.event.seq), h.event.kind, oneLine(describeEvent(h.event), width)]);
  return table(rows);
}

function intArg(name: string, min: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be an integer >= ${min}`);
    return n;
  };
}

/** Registers `exoclaw sessions list|show|search|prune`. */
export function registerSessionCommands(program: Command, io: SessionsCliIo = processIo): void {
  const sessions = program
    .command("sessions")
    .description("Read session transcripts: list, show, search; prune idle ones (the store directly, or the running gateway that holds it)");
  const configOption = ["-c, --config <file>", "exoclaw.toml to read (env EXOCLAW_CONFIG; default ~/.exoclaw/exoclaw.toml if present)"] as const;

  /** Runs a command against the configured source, printing errors and setting the exit code. */
  const withSource = async (opts: { config?: string }, fn: (src: SessionsSource) => Promise<void>, open = openSessionsSource) => {
    let src: SessionsSource | undefined;
    try {
      const config = loadConfig({ config: opts.config }, io.env, [BUILTIN_PLUGINS_DIR]);
      src = await open(config);
      await fn(src);
    } catch (err) {
      io.err(`exoclaw: ${(err as Error).message}`);
      process.exitCode = 1;
    } finally {
      await src?.close().catch(() => {});
    }
  };

  sessions
    .command("list")
    .description("List sessions by key, with their event count and last activity")
    .option(...configOption)
    .option("--agent <id>", "only this agent's sessions")
    .option("--channel <name>", "only this channel's sessions")
    .option("--peer <id>", "only sessions with this peer")
    .option("--limit <n>", "sessions per page (default 100, at most 1000)", intArg("--limit", 1))
    .option("--cursor <cursor>", "the page after this cursor (printed at the end of a page)")
    .option("--json", "print JSON ({sessions, nextCursor?}) instead of a table")
    .action((opts: { config?: string; agent?: string; channel?: string; peer?: string; limit?: number; cursor?: string; json?: boolean }) =>
      withSource(opts, async (src) => {
        const page = await src.list({ agent: opts.agent, channel: opts.channel, peer: opts.peer, cursor: opts.cursor, limit: opts.limit });
        for (const line of opts.json ? [JSON.stringify(page, null, 2)] : formatSessionList(page)) io.out(line);
      }),
    );

  sessions
    .command("show <sessionKey>")
    .description("Print a session's events in order (agent:<agent>:<channel>:<account>:<peer>)")
    .option(...configOption)
    .option("--after-seq <n>", "events after this seq", intArg("--after-seq", 0))
    .option("--limit <n>", "events per page (default 100, at most 1000)", intArg("--limit", 1))
    .option("--full", "do not cut long texts")
    .option("--json", "print JSON ({sessionKey, events, nextAfterSeq?}) instead of a table")
    .action((sessionKey: string, opts: { config?: string; afterSeq?: number; limit?: number; full?: boolean; json?: boolean }) =>
      withSource(opts, async (src) => {
        const page = await src.history(sessionKey, { afterSeq: opts.afterSeq, limit: opts.limit });
        if (page.events.length === 0 && (opts.afterSeq ?? 0) === 0) throw new Error(`no session ${sessionKey} (via ${src.via})`);
        for (const line of opts.json ? [JSON.stringify(page, null, 2)] : formatHistory(page, opts.full ? 0 : 100)) io.out(line);
      }),
    );

  sessions
    .command("search <query>")
    .description("Full-text search over messages, replies, tool results, errors and summaries, best first")
    .option(...configOption)
    .option("--limit <n>", "hits (default 20, at most 200)", intArg("--limit", 1))
    .option("--session <sessionKey>", "only this session")
    .option("--json", "print JSON ({hits}) instead of a table")
    .action((query: string, opts: { config?: string; limit?: number; session?: string; json?: boolean }) =>
      withSource(opts, async (src) => {
        const hits = await src.search(query, { limit: opts.limit, sessionKey: opts.session });
        for (const line of opts.json ? [JSON.stringify({ hits }, null, 2)] : formatHits(hits)) io.out(line);
      }),
    );

  sessions
    .command("prune")
    .description("Remove sessions idle for longer than --older-than (never one with a turn not ended or a reply still owed)")
    .option(...configOption)
    .requiredOption("--older-than <age>", `remove sessions with no activity for this long: ${DURATION_HINT}`, (v: string) => {
      const ms = parseDuration(v);
      if (ms === undefined || ms < 1000) throw new InvalidArgumentError(`It must be ${DURATION_HINT}, at least 1s.`);
      return ms;
    })
    .option("--dry-run", "only count what would be removed")
    .option("--json", "print JSON ({sessions, events, kept, idleBefore, dryRun, via}) instead of text")
    .action((opts: { config?: string; olderThan: number; dryRun?: boolean; json?: boolean }) =>
      withSource(
        opts,
        async (src) => {
          const report = await src.prune(opts.olderThan, opts.dryRun === true);
          for (const line of opts.json ? [JSON.stringify({ ...report, via: src.via }, null, 2)] : formatPrune(report, src.via)) io.out(line);
        },
        openPruneSource,
      ),
    );
}
