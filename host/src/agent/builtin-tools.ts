/**
 * Tools the host itself provides to agents (not plugins). For now one: `message_send`, which
 * lets an agent message a peer — its own conversation, or another peer its outbound allowlist
 * names. The host enforces the allowlist here, whatever the model (or a prompt injection) asks.
 */
import type { Logger } from "pino";
import type { ToolResult, ToolSpec } from "../plugins/index.js";
import type { SessionKeyParts } from "../store/index.js";
import type { OutboundPolicy } from "./outbound-policy.js";
import type { OutboundSender, OutboundTarget } from "./types.js";

/** Name of the built-in outbound messaging tool. */
export const MESSAGE_SEND = "message_send";

/** Names of every built-in tool: a plugin tool with one of these names is hidden (see the runtime). */
export const BUILTIN_TOOL_NAMES: ReadonlySet<string> = new Set([MESSAGE_SEND]);

/** Largest `text` accepted by `message_send`, characters. */
export const MAX_MESSAGE_SEND_CHARS = 16 * 1024;

/** The JSON schema the model sees for `message_send`. */
export const MESSAGE_SEND_SPEC: ToolSpec = {
  name: MESSAGE_SEND,
  description:
    "Send a text message to a peer on a messaging channel. channel and account default to the current conversation's. " +
    "Only the peer you are talking with and the peers in this agent's outbound allowlist can be messaged; any other target is refused.",
  inputSchema: {
    type: "object",
    properties: {
      peer: { type: "string", description: "the recipient's id on the channel (user or chat id)" },
      text: { type: "string", description: "the message to send" },
      channel: { type: "string", description: "channel name, e.g. telegram; default: the current conversation's" },
      account: { type: "string", description: "channel account to send from; default: the current conversation's" },
      thread: { type: "string", description: "platform thread to post in (optional)" },
    },
    required: ["peer", "text"],
    additionalProperties: false,
  },
};

/** The conversation a `message_send` call is made from. */
export interface MessageSendContext {
  agentId: string;
  sessionKey: string;
  /** The session key's parts: the default channel/account, and the always-allowed own peer. */
  session: SessionKeyParts;
  /** Thread of the message being answered: the default thread for a reply to the own peer. */
  thread?: string;
  policy: OutboundPolicy;
  sender: OutboundSender;
  logger: Logger;
}

const str = (v: unknown): v is string => typeof v === "string" && v.length > 0;

/**
 * Runs one `message_send` call. Never throws: a bad input, a refused target or a failed send is
 * an error result the model sees.
 *
 * Allowed targets: the session's own (channel, account, peer), or a (channel, peer) the agent's
 * outbound allowlist matches. A refusal is logged (warn) with the agent, session and target, and
 * the sender is not called.
 */
export async function messageSend(input: unknown, ctx: MessageSendContext, signal?: AbortSignal): Promise<ToolResult> {
  const o = input !== null && typeof input === "object" && !Array.isArray(input) ? (input as Record<string, unknown>) : undefined;
  if (!o) return { content: "message_send: input must be an object {peer, text, channel?, account?, thread?}", isError: true };
  if (!str(o.peer)) return { content: "message_send: peer must be a non-empty string", isError: true };
  if (!str(o.text)) return { content: "message_send: text must be a non-empty string", isError: true };
  if (o.text.length > MAX_MESSAGE_SEND_CHARS) return { content: `message_send: text is longer than ${MAX_MESSAGE_SEND_CHARS} characters`, isError: true };
  for (const f of ["channel", "account", "thread"] as const) {
    if (o[f] !== undefined && !str(o[f])) return { content: `message_send: ${f} must be a non-empty string when given`, isError: true };
  }
  const channel = (o.channel as string | undefined) ?? ctx.session.channel;
  const account = (o.account as string | undefined) ?? ctx.session.account;
  const peer = o.peer;
  const own = channel === ctx.session.channel && account === ctx.session.account && peer === ctx.session.peer;
  const target: OutboundTarget = { channel, account, peer, content: o.text };
  const thread = (o.thread as string | undefined) ?? (own ? ctx.thread : undefined);
  if (thread !== undefined) target.thread = thread;

  if (!own && !ctx.policy.allows(channel, peer)) {
    ctx.logger.warn(
      { agent: ctx.agentId, sessionKey: ctx.sessionKey, target: { channel, account, peer } },
      "message_send refused: target not in the agent's outbound allowlist",
    );
    const list = ctx.policy.entries.length > 0 ? `[${ctx.policy.entries.join(", ")}]` : "empty";
    return {
      content: `message_send refused: ${channel} peer ${JSON.stringify(peer)} is not in agent "${ctx.agentId}"'s outbound allowlist (${list}); only the current conversation's peer and allowlisted peers can be messaged`,
      isError: true,
    };
  }
  try {
    const receipt = await ctx.sender.send(target, signal);
    const id = receipt?.platformMessageId !== undefined ? ` (platform message id ${receipt.platformMessageId})` : "";
    return { content: `sent to ${channel} peer ${JSON.stringify(peer)}${id}`, isError: false };
  } catch (err) {
    if (signal?.aborted) throw err;
    const reason = (err as Error)?.message ?? String(err);
    ctx.logger.warn({ agent: ctx.agentId, sessionKey: ctx.sessionKey, target: { channel, account, peer }, error: reason }, "message_send failed");
    return { content: `message_send failed: could not send to ${channel} peer ${JSON.stringify(peer)}: ${reason}`, isError: true };
  }
}
