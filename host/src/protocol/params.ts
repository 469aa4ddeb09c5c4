import { z } from "zod";
import { ErrorCode, RpcError } from "./errors.js";
import type { ChatSendParams } from "./types.js";

const id = (field: string) => z.string({ error: `${field} must be a string` }).min(1, `${field} must not be empty`).max(256, `${field} is longer than 256 characters`);

/** Schema of `chat.send` params (protocol v1). */
export const ChatSendParamsSchema = z.object({
  content: z.string({ error: (i) => (i.input === undefined ? "content is required" : "content must be a string") }).min(1, "content must not be empty"),
  channel: id("channel").default("ws"),
  account: id("account").default("default"),
  peer: id("peer").default("main"),
  guild: id("guild").optional(),
  team: id("team").optional(),
});

/** Params schema for methods that take none: absent, `{}` or `[]`. */
export const NoParamsSchema = z.union([z.undefined(), z.object({}), z.array(z.unknown()).max(0)]);

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
