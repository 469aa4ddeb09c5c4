import { isAbsolute } from "node:path";
import * as z from "zod";
import { ErrorCode, RpcError } from "./errors.js";
import type { ChatSendParams } from "./types.js";

const id = (field: string) =>
  z
    .string({ error: `${field} must be a string` })
    .min(1, `${field} must not be empty`)
    .max(256, `${field} is longer than 256 characters`);

// Every schema here is built on its first parse (z.lazy), not at module load: zod builds each
// `.min()`, `.optional()`, ... as a new schema object, and none of these is needed before the
// gateway is ready (issue 13, start-up time).

/** `chat.send` params (protocol v1); built by each lazy schema that uses it. */
const chatSendParams = () =>
  z.object({
    content: z.string({ error: (i) => (i.input === undefined ? "content is required" : "content must be a string") }).min(1, "content must not be empty"),
    channel: id("channel").default("ws"),
    account: id("account").default("default"),
    peer: id("peer").default("main"),
    guild: id("guild").optional(),
    team: id("team").optional(),
  });

/** Schema of `chat.send` params (protocol v1). */
export const ChatSendParamsSchema = z.lazy(chatSendParams);

/** Params schema for methods that take none: absent, `{}` or `[]`. */
export const NoParamsSchema = z.lazy(() => z.union([z.undefined(), z.object({}), z.array(z.unknown()).max(0)]));

// The gateway methods' params (gateway/methods.ts validates with them; docs/protocol.md documents them).

/** Schema of `plugin.load` params: an absolute path to a `.wasm` file. */
export const PluginLoadParamsSchema = z.lazy(() =>
  z.object({
    path: z
      .string({ error: (i) => (i.input === undefined ? "path is required" : "path must be a string") })
      .min(1, "path must not be empty")
      .refine((p) => isAbsolute(p), "path must be absolute")
      .refine((p) => p.endsWith(".wasm"), "path must name a .wasm file"),
  }),
);
/** Schema of `plugin.unload` params: a plugin name. */
export const PluginUnloadParamsSchema = z.lazy(() =>
  z.object({
    name: z.string({ error: (i) => (i.input === undefined ? "name is required" : "name must be a string") }).min(1, "name must not be empty"),
  }),
);

const sessionKeyField = z.lazy(() =>
  z
    .string({ error: (i) => (i.input === undefined ? "sessionKey is required" : "sessionKey must be a string") })
    .min(1, "sessionKey must not be empty")
    .max(4096, "sessionKey is longer than 4096 characters"),
);
const limitField = (max: number) =>
  z.number({ error: "limit must be a number" }).int("limit must be an integer").min(1, "limit must be at least 1").max(max, `limit must be at most ${max}`);
const partField = (name: string) =>
  z
    .string({ error: `${name} must be a string` })
    .min(1, `${name} must not be empty`)
    .max(256, `${name} is longer than 256 characters`);

/**
 * `chat.send` params of protocol v1 plus the optional `idempotencyKey` (1-256 characters).
 * `account` has no fixed default here: it defaults to the connection's own account.
 */
export const ChatSendSchema = z.lazy(() =>
  chatSendParams().extend({ account: partField("account").optional(), idempotencyKey: partField("idempotencyKey").optional() }),
);
/**
 * Schema of `chat.abort` params: exactly one of `runId` (a turn running or queued) and
 * `sessionKey` (the turn running in that session).
 */
export const ChatAbortSchema = z.lazy(() =>
  z
    .object({ runId: partField("runId").optional(), sessionKey: sessionKeyField.optional() })
    .refine((p) => (p.runId === undefined) !== (p.sessionKey === undefined), "give exactly one of runId and sessionKey"),
);
/** Schema of `sessions.list` params: filters, `cursor`, `limit` (1-1000). */
export const SessionsListSchema = z.lazy(() =>
  z.object({
    agent: partField("agent").optional(),
    channel: partField("channel").optional(),
    peer: partField("peer").optional(),
    cursor: z.string({ error: "cursor must be a string" }).min(1, "cursor must not be empty").optional(),
    limit: limitField(1000).optional(),
  }),
);
/** Schema of `chat.history` params: `sessionKey`, `afterSeq`, `limit` (1-1000 events). */
export const ChatHistorySchema = z.lazy(() =>
  z.object({
    sessionKey: sessionKeyField,
    afterSeq: z.number({ error: "afterSeq must be a number" }).int("afterSeq must be an integer").min(0, "afterSeq must not be negative").optional(),
    limit: limitField(1000).optional(),
  }),
);
/** Schema of params that name one session (`sessionKey`, at most 4096 characters). */
export const SessionKeySchema = z.lazy(() => z.object({ sessionKey: sessionKeyField }));
/** Schema of `sessions.reset` params: `sessionKey` and an optional `reason` (at most 1000 characters). */
export const SessionsResetSchema = z.lazy(() =>
  z.object({
    sessionKey: sessionKeyField,
    reason: z.string({ error: "reason must be a string" }).max(1000, "reason is longer than 1000 characters").optional(),
  }),
);
/** Schema of `sessions.search` params: `query` (1-1000 characters), `limit` (1-200), optional `sessionKey`. */
export const SessionsSearchSchema = z.lazy(() =>
  z.object({
    query: z
      .string({ error: (i) => (i.input === undefined ? "query is required" : "query must be a string") })
      .min(1, "query must not be empty")
      .max(1000, "query is longer than 1000 characters"),
    limit: limitField(200).optional(),
    sessionKey: sessionKeyField.optional(),
  }),
);

/**
 * Schema of `sessions.prune` params: `olderThanMs` (sessions idle longer than this go, ms; at
 * least 1000) and `dryRun` (count only).
 */
export const SessionsPruneSchema = z.lazy(() =>
  z.object({
    olderThanMs: z
      .number({ error: (i) => (i.input === undefined ? "olderThanMs is required" : "olderThanMs must be a number") })
      .int("olderThanMs must be an integer")
      .min(1000, "olderThanMs must be at least 1000 (1 s)"),
    dryRun: z.boolean({ error: "dryRun must be a boolean" }).optional(),
  }),
);

/**
 * Schema of `usage.summary` params: `sinceMs` (only usage at or after this time, ms since the
 * Unix epoch) and `by` (group by agent, peer, model or day).
 */
export const UsageSummarySchema = z.lazy(() =>
  z.object({
    sinceMs: z
      .number({ error: "sinceMs must be a number (ms since the Unix epoch)" })
      .int("sinceMs must be an integer")
      .min(0, "sinceMs must not be negative")
      .optional(),
    by: z.enum(["agent", "peer", "model", "day"], { error: "by must be one of agent, peer, model, day" }).optional(),
  }),
);

/**
 * Validates params with a schema.
 * @throws RpcError -32602 naming every offending field, e.g. `Invalid params: content: content is required`
 */
export function parseParams<T>(schema: z.ZodType<T>, params: unknown): T {
  const parsed = schema.safeParse(params ?? {});
  if (parsed.success) return parsed.data;
  const details = parsed.error.issues.map((i) => (i.path.length ? `${i.path.join(".")}: ${i.message}` : i.message));
  throw new RpcError(ErrorCode.InvalidParams, `Invalid params: ${details.join("; ")}`, { issues: details });
}

/** Validates `chat.send` params. @throws RpcError -32602 */
export function parseChatSendParams(params: unknown): ChatSendParams {
  return parseParams(ChatSendParamsSchema, params);
}
