/**
 * `exoclaw memory list|search|forget`: the agents' notes for operators, and forgetting a peer
 * (its notes and its session log: a person's right to be forgotten).
 *
 * Asks the running gateway (`memory.list`, `memory.search`, `memory.delete`; address and token
 * from the config): the notes live in its process. `forget` with no gateway running opens the
 * store and the notes file itself (`<state dir>/memory/notes.jsonl`) and erases from both.
 */
import type { Command } from "commander";
import { join } from "node:path";
import {
  deleteSessionAndMedia,
  forgetPeer,
  MediaStore,
  MemoryService,
  NoteStore,
  notesFile,
  type ForgetResult,
  type Note,
  type NoteHit,
} from "../agent/index.js";
import { loadConfig, type Config } from "../config/index.js";
import { silentLogger } from "../log/index.js";
import { BUILTIN_PLUGINS_DIR } from "../paths.js";
import { MEMORY_STORE_URL, openSessionLog, openVectorTable } from "../store/index.js";
import { connectGateway } from "./gateway-client.js";
import type { SessionsCliIo } from "./sessions.js";

const processIo: SessionsCliIo = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  env: process.env,
};

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
const flat = (s: string, max = 100) => {
  const t = s.replace(/\r?\n/g, "⏎");
  return t.length > max ? `${t.slice(0, max - 1)}…` : t;
};

/** Notes as table lines: id, agent, channel, account, peer, sender, time, text. */
export function formatNotes(notes: readonly Note[], scores?: readonly number[]): string[] {
  if (notes.length === 0) return ["no notes"];
  const rows = [[...(scores ? ["SCORE"] : []), "ID", "AGENT", "CHANNEL", "ACCOUNT", "PEER", "SENDER", "AT", "TEXT"]];
  notes.forEach((n, i) =>
    rows.push([...(scores ? [scores[i]!.toFixed(2)] : []), String(n.id), n.agent, n.channel, n.account, n.peer, n.sender, iso(n.at), flat(n.text)]),
  );
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  "));
}

/** `exoclaw memory forget` as text lines. */
export function formatForget(peer: string, r: ForgetResult, via: string): string[] {
  return [
    `forgot peer ${JSON.stringify(peer)} (via ${via}): ${r.sessions.length} session${r.sessions.length === 1 ? "" : "s"} erased, ${r.notes} note${r.notes === 1 ? "" : "s"} deleted`,
    ...r.sessions.map((k) => `  erased ${k}`),
  ];
}

/** Forgets a peer without a gateway: the store and the notes file directly. */
async function forgetOffline(config: Config, target: { peer: string; channel?: string; account?: string; agent?: string }): Promise<ForgetResult> {
  if (config.store.url === MEMORY_STORE_URL) throw new Error("the memory store lives inside the gateway, which is not running: nothing is stored");
  const log = await openSessionLog(config.store);
  try {
    const notes = await NoteStore.open({ file: notesFile(config.stateDir) });
    // The notes' stored vectors (embedded store on disk) go with them.
    const vectors = await openVectorTable(config.store);
    const memory = new MemoryService({ notes, log, logger: silentLogger(), vectors });
    // The sessions' stored images too (<state>/media, agent/media-store.ts).
    const media = new MediaStore({ dir: join(config.stateDir, "media") });
    const result = await forgetPeer({ log, deleteSession: (k) => deleteSessionAndMedia(log, media, k), memory }, target);
    await notes.flush();
    return result;
  } finally {
    await log.close();
  }
}

/** Registers `exoclaw memory list|search|forget`. */
export function registerMemoryCommands(program: Command, io: SessionsCliIo = processIo): void {
  const memory = program.command("memory").description("The agents' notes: list, search; forget a peer (its notes and session log)");
  const configOption = ["-c, --config <file>", "exoclaw.toml to read (env EXOCLAW_CONFIG; default ~/.exoclaw/exoclaw.toml if present)"] as const;
  const run = async (opts: { config?: string }, fn: (config: Config) => Promise<void>) => {
    try {
      await fn(loadConfig({ config: opts.config }, io.env, [BUILTIN_PLUGINS_DIR]));
    } catch (err) {
      io.err(`exoclaw: ${(err as Error).message}`);
      process.exitCode = 1;
    }
  };
  const gateway = async <T>(config: Config, method: string, params: Record<string, unknown>): Promise<T> => {
    const gw = await connectGateway(config);
    try {
      return await gw.call<T>(method, params);
    } finally {
      await gw.close().catch(() => {});
    }
  };
  type FilterOpts = { config?: string; agent?: string; channel?: string; account?: string; peer?: string; sender?: string; json?: boolean };
  const filter = (o: FilterOpts) =>
    Object.fromEntries(
      Object.entries({ agent: o.agent, channel: o.channel, account: o.account, peer: o.peer, sender: o.sender }).filter(([, v]) => v !== undefined),
    );
  const withFilters = (c: Command) =>
    c
      .option(...configOption)
      .option("--agent <id>", "only this agent's notes")
      .option("--channel <name>", "only notes written on this channel")
      .option("--account <id>", "only notes written on this channel account")
      .option("--peer <id>", "only notes of conversations with this peer (user or chat id)")
      .option("--sender <id>", "only notes written while this sender spoke (group chats)")
      .option("--json", "print JSON instead of a table");

  withFilters(memory.command("list").description("List notes by id (oldest first)"))
    .option("--after-id <n>", "notes after this id", (v: string) => Number(v))
    .option("--limit <n>", "notes per page (default 100, at most 1000)", (v: string) => Number(v))
    .action((opts: FilterOpts & { afterId?: number; limit?: number }) =>
      run(opts, async (config) => {
        const page = await gateway<{ notes: Note[]; nextAfterId?: number }>(config, "memory.list", {
          ...filter(opts),
          ...(opts.afterId !== undefined ? { afterId: opts.afterId } : {}),
          ...(opts.limit !== undefined ? { limit: opts.limit } : {}),
        });
        if (opts.json) return io.out(JSON.stringify(page, null, 2));
        for (const line of formatNotes(page.notes)) io.out(line);
        if (page.nextAfterId !== undefined) io.out(`more: exoclaw memory list --after-id ${page.nextAfterId}`);
      }),
    );

  withFilters(memory.command("search <query>").description("Full-text search over notes (BM25), best first"))
    .option("--limit <n>", "hits (default 20, at most 200)", (v: string) => Number(v))
    .action((query: string, opts: FilterOpts & { limit?: number }) =>
      run(opts, async (config) => {
        const { hits } = await gateway<{ hits: NoteHit[] }>(config, "memory.search", {
          query,
          ...filter(opts),
          ...(opts.limit !== undefined ? { limit: opts.limit } : {}),
        });
        if (opts.json) return io.out(JSON.stringify({ hits }, null, 2));
        for (const line of formatNotes(
          hits.map((h) => h.note),
          hits.map((h) => h.score),
        ))
          io.out(line);
      }),
    );

  memory
    .command("forget")
    .description("Erase everything about a peer: its sessions (any agent) and every note written with or by it")
    .option(...configOption)
    .requiredOption("--peer <id>", "the peer (user or chat id) to forget")
    .option("--channel <name>", "only on this channel")
    .option("--account <id>", "only on this channel account")
    .option("--agent <id>", "only this agent's")
    .option("--json", "print JSON ({sessions, notes, via})")
    .action((opts: { config?: string; peer: string; channel?: string; account?: string; agent?: string; json?: boolean }) =>
      run(opts, async (config) => {
        const target = { peer: opts.peer, ...filter({ channel: opts.channel, account: opts.account, agent: opts.agent }) };
        let result: ForgetResult;
        let via: string;
        const gw = await connectGateway(config).catch((err: Error) => {
          // No gateway answering: erase from the store and the notes file directly.
          if (err.message.startsWith("no gateway answers")) return undefined;
          throw err;
        });
        if (gw) {
          via = `gateway ${gw.url}`;
          try {
            result = await gw.call<ForgetResult>("memory.delete", target);
          } finally {
            await gw.close().catch(() => {});
          }
        } else {
          result = await forgetOffline(config, target);
          via = "store";
        }
        for (const line of opts.json ? [JSON.stringify({ ...result, via }, null, 2)] : formatForget(opts.peer, result, via)) io.out(line);
      }),
    );
}
