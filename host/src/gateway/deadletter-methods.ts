/**
 * `deadletters.list`, `deadletters.replay`, `deadletters.purge` (docs/protocol.md): the bus's
 * dead-letter store from a client, what `exoclaw dlq list|replay|purge` does from the shell
 * (bus/dlq-cli.ts). Scope `admin`. Replay and purge are logged at info with the client's account
 * and address. Without `[bus]`, `list` answers `{enabled: false, entries: []}` and the others -32602.
 */
import * as z from "zod";
import { BusError, dlqList, dlqPurge, dlqReplay, type DeadLetter, type DeadLetterStore } from "../bus/index.js";
import { processSecrets } from "../log/index.js";
import { ErrorCode, RpcError, parseParams } from "../protocol/index.js";
import { requireScope } from "./identity.js";
import type { MethodHandler } from "./rpc.js";

/** What the methods reach into. */
export interface DeadLetterMethodDeps {
  /** The bus's store; absent = no bus. */
  deadLetters?: DeadLetterStore;
  logger: { info(obj: object, msg: string): void };
}

/** One entry of `deadletters.list`: a {@link DeadLetter} without its payload, which is shown as a bounded preview. */
export interface DeadLetterView {
  id: string;
  subject: string;
  stream: string;
  msgId: string;
  consumer: string;
  attempts: number;
  /** The last error (known secret values replaced). */
  error: string;
  /** ms since the Unix epoch. */
  failedAt: number;
  /** The payload as JSON, cut to {@link PREVIEW_CHARS} characters, known secret values replaced. */
  preview: string;
}

/** Result of `deadletters.list`. */
export interface DeadLettersListResult {
  /** Whether a bus (and so a dead-letter store) is configured. */
  enabled: boolean;
  entries: DeadLetterView[];
}

const PREVIEW_CHARS = 500;

const ListSchema = z.lazy(() =>
  z.union([z.undefined(), z.strictObject({ consumer: z.string().min(1).max(200).optional(), limit: z.number().int().min(1).max(1000).optional() })]),
);
const IdsSchema = z.lazy(() => z.strictObject({ ids: z.array(z.string().min(1).max(64)).min(1).max(1000).optional(), all: z.literal(true).optional() }));

/** A dead letter as `deadletters.list` shows it. */
export function viewDeadLetter(e: DeadLetter): DeadLetterView {
  let preview: string;
  try {
    preview = JSON.stringify(e.data) ?? "";
  } catch {
    preview = String(e.data);
  }
  return {
    id: e.id,
    subject: e.subject,
    stream: e.stream,
    msgId: e.msgId,
    consumer: e.consumer,
    attempts: e.attempts,
    error: processSecrets.scrub(e.error),
    failedAt: e.failedAt,
    preview: processSecrets.scrub(preview.slice(0, PREVIEW_CHARS)),
  };
}

/** `ids` or `all: true`, never neither (a bare call must not act on everything). */
function chosen(params: unknown, what: string): { ids: string[]; all: boolean } {
  const p = parseParams(IdsSchema, params);
  if ((p.ids === undefined) === (p.all === undefined)) throw new RpcError(ErrorCode.InvalidParams, `Invalid params: ${what} needs either ids or all: true`);
  return { ids: p.ids ?? [], all: p.all === true };
}

async function storeCall<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof BusError && err.code === "not_found") throw new RpcError(ErrorCode.InvalidParams, `Invalid params: ${err.message}`);
    throw err;
  }
}

/**
 * The methods, to be added to the method table.
 * @returns name -> handler
 */
export function createDeadLetterMethods(deps: DeadLetterMethodDeps): Map<string, MethodHandler> {
  const methods = new Map<string, MethodHandler>();
  const store = (): DeadLetterStore => {
    if (deps.deadLetters === undefined) throw new RpcError(ErrorCode.InvalidParams, "Invalid params: this gateway has no [bus], so no dead letters");
    return deps.deadLetters;
  };

  methods.set("deadletters.list", async (params, ctx): Promise<DeadLettersListResult> => {
    requireScope(ctx.identity, "admin", "deadletters.list");
    const p = parseParams(ListSchema, params) ?? {};
    if (deps.deadLetters === undefined) return { enabled: false, entries: [] };
    return { enabled: true, entries: (await dlqList(deps.deadLetters, p)).map(viewDeadLetter) };
  });

  methods.set("deadletters.replay", async (params, ctx) => {
    requireScope(ctx.identity, "admin", "deadletters.replay");
    const { ids, all } = chosen(params, "deadletters.replay");
    const results = await storeCall(() => dlqReplay(store(), ids, { all }));
    const replayed = results.map((r) => ({ id: r.id, msgId: r.msgId }));
    deps.logger.info({ replayed, all, client: ctx.identity.account, remote: ctx.conn.remoteAddress }, "deadletters.replay");
    return { replayed };
  });

  methods.set("deadletters.purge", async (params, ctx) => {
    requireScope(ctx.identity, "admin", "deadletters.purge");
    const { ids, all } = chosen(params, "deadletters.purge");
    const purged = await storeCall(() => dlqPurge(store(), ids, { all }));
    deps.logger.info({ ids, all, purged, client: ctx.identity.account, remote: ctx.conn.remoteAddress }, "deadletters.purge");
    return { purged };
  });

  return methods;
}
