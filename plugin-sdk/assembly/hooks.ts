// Lifecycle hooks (wit/exoclaw.wit, world `hooks`; docs/hooks.md). A hook is an export named
// after the hook, declared in plugin.toml `[capabilities] hooks = ["before_tool_call", ...]`:
//
// export function before_tool_call(): i32 {
//   return runHook((input: Value): HookAnswer => {
//     const name = input.get("name")!.strValue;
//     return name == "shell" ? HookAnswer.deny("no shell here") : HookAnswer.pass();
//   });
// }
//
// The input is the map {hook, context: {agentId, channel, account, peer, sender, sessionKey,
// runId?}, ...the hook's fields}; the answer {action?, reason?, content?, input?}.
import { inputBytes, outputBytes, setError } from "./extism";
import { Decoder, Encoder, Value } from "./msgpack";

/** What a hook answers. Build it with the static helpers. */
export class HookAnswer {
  action: string | null = null;
  reason: string | null = null;
  content: string | null = null;
  input: Value | null = null;

  /** Go on unchanged. */
  static pass(): HookAnswer {
    return new HookAnswer();
  }

  /** before_message: refuse the message (it is never journaled). */
  static drop(reason: string): HookAnswer {
    const a = new HookAnswer();
    a.action = "drop";
    a.reason = reason;
    return a;
  }

  /** before_tool_call: do not run the tool; the model gets an error result naming `reason`. */
  static deny(reason: string): HookAnswer {
    const a = new HookAnswer();
    a.action = "deny";
    a.reason = reason;
    return a;
  }

  /** before_message / after_tool_call / agent_response: replace the text with `content`. */
  static rewrite(content: string): HookAnswer {
    const a = new HookAnswer();
    a.action = "rewrite";
    a.content = content;
    return a;
  }

  /** before_tool_call: run the tool with `input` instead. */
  static rewriteInput(input: Value): HookAnswer {
    const a = new HookAnswer();
    a.action = "rewrite";
    a.input = input;
    return a;
  }

  /** before_model_call: add `text` to the model call's system prompt. */
  static addContext(text: string): HookAnswer {
    const a = new HookAnswer();
    a.content = text;
    return a;
  }
}

/** A hook implementation: the decoded input map in, the answer out. */
export type HookHandler = (input: Value) => HookAnswer;

/**
 * Runs one hook call end to end: decodes the input map, calls `handler`, writes the answer,
 * runs the collector. Returns the export's status: 0, or 1 after reporting a malformed input.
 */
export function runHook(handler: HookHandler): i32 {
  const status = runHookInner(handler);
  __collect();
  return status;
}

function runHookInner(handler: HookHandler): i32 {
  const dec = new Decoder(inputBytes());
  const v = dec.decode();
  if (v == null || !v.isMap()) {
    setError("invalid hook input: expected a MessagePack map");
    return 1;
  }
  writeHookAnswer(handler(v));
  return 0;
}

/** Encodes `answer` as the call output. */
export function writeHookAnswer(answer: HookAnswer): void {
  const m = Value.map();
  if (answer.action != null) m.set("action", Value.str(answer.action!));
  if (answer.reason != null) m.set("reason", Value.str(answer.reason!));
  if (answer.content != null) m.set("content", Value.str(answer.content!));
  if (answer.input != null) m.set("input", answer.input!);
  const enc = new Encoder(64);
  enc.writeValue(m);
  outputBytes(enc.finish());
}

/** A string field of a hook input (or of its `context`), or "" when absent. */
export function hookString(input: Value, key: string): string {
  const v = input.get(key);
  return v != null && v.isString() ? v.strValue : "";
}
