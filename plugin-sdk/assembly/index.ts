// exoclaw guest SDK for AssemblyScript plugins.
//
// Wire contract (ABI v1, see wit/exoclaw.wit): the host calls the plugin's `call` export with
// a MessagePack map `{name, input}` as the Extism input, and expects a MessagePack map
// `{content: string, isError: bool}` as the Extism output. Protocol faults (undecodable input)
// go through the Extism error channel instead.
//
// Build with `--runtime minimal` (or `incremental`) and `--use abort=<sdk>/abort/exoclawAbort`;
// `scripts/build-plugins.mjs` does both.

export * from "./extism";
export * from "./host";
export * from "./msgpack";
export * from "./number";
export * from "./json";
export * from "./context";
export * from "./channel";
export * from "./multipart";
export * from "./hooks";
export { exoclawAbort } from "./abort";

import { inputBytes, outputBytes, setError } from "./extism";
import { Decoder, Encoder, Value } from "./msgpack";

/** What a tool returns: text for the model, and whether it describes a failure. */
export class ToolResult {
  constructor(public content: string, public isError: bool = false) {}

  static ok(content: string): ToolResult {
    return new ToolResult(content, false);
  }

  /** A tool-level error the model should see (bad arguments, domain errors). */
  static error(content: string): ToolResult {
    return new ToolResult(content, true);
  }
}

/**
 * A tool implementation: receives the tool name the model called (a plugin may offer several)
 * and the decoded `input` (whatever JSON the model produced, as a `Value`; nil if absent).
 */
export type ToolHandler = (name: string, input: Value) => ToolResult;

/**
 * Runs one tool call end to end: reads and decodes the input, calls `handler`, writes the
 * encoded `{content, isError}` output, then runs the garbage collector. Returns the status
 * code the `call` export should return: 0 on success, 1 after reporting a protocol fault via
 * `error_set`.
 *
 * Usage:
 * ```ts
 * export function call(): i32 { return runTool(myHandler); }
 * ```
 */
export function runTool(handler: ToolHandler): i32 {
  const status = runToolInner(handler);
  // The minimal runtime only collects when asked and must be asked with no managed values
  // live on the Wasm stack, which is true here: everything of this call has been copied out.
  __collect();
  return status;
}

function runToolInner(handler: ToolHandler): i32 {
  const call = readToolCall();
  if (call == null) return 1;
  writeToolResult(handler(call.get("name")!.strValue, toolInput(call)));
  return 0;
}

/**
 * Decodes this call's envelope `{name: string, input?, context?}` from the input. On a protocol
 * fault (not MessagePack, not a map, no string `name`) reports it through `error_set` and
 * returns null; the `call` export should then return 1.
 */
export function readToolCall(): Value | null {
  const dec = new Decoder(inputBytes());
  const call = dec.decode();
  if (call == null) {
    setError("invalid tool call: " + dec.error);
    return null;
  }
  if (!call.isMap()) {
    setError("invalid tool call: expected a map {name, input}");
    return null;
  }
  const name = call.get("name");
  if (name == null || !name.isString()) {
    setError("invalid tool call: 'name' must be a string");
    return null;
  }
  return call;
}

/** The `input` of a decoded call envelope; nil when absent. */
export function toolInput(call: Value): Value {
  const input = call.get("input");
  return input != null ? input : Value.nil();
}

/** Encodes `{content, isError}` and sets it as the call output. */
export function writeToolResult(result: ToolResult): void {
  const enc = new Encoder(32 + result.content.length);
  enc.writeMapHeader(2);
  enc.writeString("content");
  enc.writeString(result.content);
  enc.writeString("isError");
  enc.writeBool(result.isError);
  outputBytes(enc.finish());
}
