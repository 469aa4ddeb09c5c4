// Who a tool call is for. The call envelope `{name, input}` may carry a third, host-filled field
// `context: {agentId?, channel?, account?, peer?, sender?, sessionKey?}` (strings): the
// conversation the call belongs to. Unlike `input`, the model cannot write it, and the gateway
// derives it from the session (for WebSocket clients: from the connection's identity), so a tool
// can use it to keep data apart. Key on all of agentId, channel and account as well as peer:
// the same peer id on two channels (or under two agents) is two different conversations.
//
// The gateway sends it with every tool call of a chat turn. Tools must still work without it
// (a call from `exoclaw plugin test` or another host): every field then reads null.

import { Value } from "./msgpack";
import { readToolCall, ToolResult, toolInput, writeToolResult } from "./index";

/** The host-supplied context of one tool call; a field is null when the host did not send it. */
export class ToolContext {
  /** Who the conversation is with (a chat id, a WebSocket client's peer id). */
  peer: string | null = null;
  /** The session key, `agent:<agent>:<channel>:<account>:<peer>`. */
  sessionKey: string | null = null;
  /** The agent running the turn. */
  agentId: string | null = null;
  /** The channel of the conversation (`ws`, `telegram`, ...). */
  channel: string | null = null;
  /** The account on that channel (a bot account, a WebSocket client's account). */
  account: string | null = null;
  /** Who wrote the message: the peer in a direct conversation (groups: the member). */
  sender: string | null = null;
}

/** A tool implementation that also receives the call's context. */
export type ContextToolHandler = (name: string, input: Value, context: ToolContext) => ToolResult;

function str(map: Value, key: string): string | null {
  const v = map.get(key);
  return v != null && v.isString() ? v.strValue : null;
}

/** Reads `context` from a decoded call envelope (all fields null when absent or malformed). */
export function readToolContext(call: Value): ToolContext {
  const ctx = new ToolContext();
  const c = call.get("context");
  if (c == null || !c.isMap()) return ctx;
  ctx.peer = str(c, "peer");
  ctx.sessionKey = str(c, "sessionKey");
  ctx.agentId = str(c, "agentId");
  ctx.channel = str(c, "channel");
  ctx.account = str(c, "account");
  ctx.sender = str(c, "sender");
  return ctx;
}

/**
 * Like `runTool`, but the handler also gets the call's `ToolContext`. Returns the status code
 * the `call` export should return: 0 on success, 1 after reporting a protocol fault.
 */
export function runToolWithContext(handler: ContextToolHandler): i32 {
  const status = runInner(handler);
  __collect();
  return status;
}

function runInner(handler: ContextToolHandler): i32 {
  const call = readToolCall();
  if (call == null) return 1;
  writeToolResult(handler(call.get("name")!.strValue, toolInput(call), readToolContext(call)));
  return 0;
}
