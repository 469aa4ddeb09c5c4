/**
 * The `memory.*` methods of protocol v1 (docs/protocol.md, "Memory"): `memory.list`,
 * `memory.search` and `memory.delete` over the agents' notes, and forgetting a peer (notes and
 * session log). Scoped like `chat.history`: scope `chat` reaches the notes of its own `ws`
 * conversations (channel ws, its account), scope `admin` everything.
 */
import * as z from "zod";
import type { AgentRuntime, ForgetResult, Note, NoteHit, ScopeFilter } from "../agent/index.js";
import { ErrorCode, parseParams, RpcError } from "../protocol/index.js";
import { forbidden, requireScope, type ClientIdentity } from "./identity.js";
import type { MethodHandler } from "./rpc.js";

const part = (name: string) =>
  z
    .string({ error: `${name} must be a string` })
    .min(1, `${name} must not be empty`)
    .max(256, `${name} is longer than 256 characters`);
// A function, called inside the z.lazy schemas below: built at a method's first call, not when
// the host bundle is evaluated (every command paid for it at start-up; issue 13).
const filterFields = () => ({
  agent: part("agent").optional(),
  channel: part("channel").optional(),
  account: part("account").optional(),
  peer: part("peer").optional(),
  sender: part("sender").optional(),
});
const limit = (max: number) =>
  z.number({ error: "limit must be a number" }).int("limit must be an integer").min(1, "limit must be at least 1").max(max, `limit must be at most ${max}`);

/** `memory.list {agent?, channel?, account?, peer?, sender?, afterId?, limit?}` (limit 1-1000, default 100). */
export const MemoryListSchema = z.lazy(() =>
  z.strictObject({
    ...filterFields(),
    afterId: z.number({ error: "afterId must be a number" }).int("afterId must be an integer").min(0, "afterId must not be negative").optional(),
    limit: limit(1000).optional(),
  }),
);
/** `memory.search {query, agent?, channel?, account?, peer?, sender?, limit?}` (query 1-1000 characters, limit 1-200, default 20). */
export const MemorySearchSchema = z.lazy(() =>
  z.strictObject({
    ...filterFields(),
    query: z
      .string({ error: (i) => (i.input === undefined ? "query is required" : "query must be a string") })
      .min(1, "query must not be empty")
      .max(1000, "query is longer than 1000 characters"),
    limit: limit(200).optional(),
  }),
);
/**
 * `memory.delete {ids}` (notes by id, 1-1000 of them) or `memory.delete {peer, channel?, account?, agent?}`
 * (forget the peer: its sessions and every note written with or by it).
 */
export const MemoryDeleteSchema = z.lazy(() =>
  z.union([
    z.strictObject({
      ids: z.array(z.number().int().min(1), { error: "ids must be an array of note ids" }).min(1, "ids must not be empty").max(1000, "at most 1000 ids"),
    }),
    z.strictObject({ peer: part("peer"), channel: part("channel").optional(), account: part("account").optional(), agent: part("agent").optional() }),
  ]),
);

/** What the memory methods reach into. */
export interface MemoryMethodDeps {
  runtime: Pick<AgentRuntime, "memory" | "forgetPeer">;
}

/**
 * The filter a caller may use: an admin's as given; a chat client's pinned to its own ws
 * conversations (channel ws, its account).
 * @throws RpcError -32010 when a chat client names another channel or account
 */
function scoped(identity: ClientIdentity, f: ScopeFilter, method: string): ScopeFilter {
  if (identity.scopes.has("admin")) return f;
  requireScope(identity, "chat", method);
  if ((f.channel !== undefined && f.channel !== "ws") || (f.account !== undefined && f.account !== identity.account)) {
    throw forbidden(
      "admin",
      `${method} of channel ${f.channel ?? "ws"}, account ${f.account ?? identity.account} (this client reaches its own ws conversations)`,
    );
  }
  return { ...f, channel: "ws", account: identity.account };
}

const pick = (p: ScopeFilter): ScopeFilter => ({ agent: p.agent, channel: p.channel, account: p.account, peer: p.peer, sender: p.sender });

/** Adds `memory.list`, `memory.search` and `memory.delete` to `methods`. */
export function addMemoryMethods(methods: Map<string, MethodHandler>, deps: MemoryMethodDeps): void {
  const service = () => {
    const m = deps.runtime.memory;
    if (!m) throw new RpcError(ErrorCode.MethodNotFound, "memory is not available on this gateway");
    return m;
  };

  methods.set("memory.list", (params, ctx): { notes: Note[]; nextAfterId?: number } => {
    const p = parseParams(MemoryListSchema, params);
    const filter = scoped(ctx.identity, pick(p), "memory.list");
    const want = p.limit ?? 100;
    const notes = service().notes.list(filter, p.afterId ?? 0, want + 1);
    if (notes.length <= want) return { notes };
    const page = notes.slice(0, want);
    return { notes: page, nextAfterId: page[page.length - 1]!.id };
  });

  methods.set("memory.search", (params, ctx): { hits: NoteHit[] } => {
    const p = parseParams(MemorySearchSchema, params);
    const filter = scoped(ctx.identity, pick(p), "memory.search");
    return { hits: service().notes.searchWhere(filter, p.query, p.limit ?? 20) };
  });

  methods.set("memory.delete", async (params, ctx): Promise<{ notes: number; sessions: string[] }> => {
    const p = parseParams(MemoryDeleteSchema, params);
    const { identity } = ctx;
    if ("ids" in p) {
      const filter = scoped(identity, {}, "memory.delete");
      const gone = await service().notes.delete(p.ids, (n) => filter.channel === undefined || (n.channel === filter.channel && n.account === filter.account));
      // Their stored vectors too, before answering.
      await service().settleDeletes();
      return { notes: gone.length, sessions: [] };
    }
    // Forgetting a peer erases session logs: an admin's act, or a chat client's for its own ws peer.
    const filter = scoped(identity, { channel: p.channel, account: p.account }, "memory.delete");
    const result: ForgetResult = await deps.runtime.forgetPeer({ peer: p.peer, channel: filter.channel, account: filter.account, agent: p.agent });
    return { notes: result.notes, sessions: result.sessions };
  });
}
