// json_query: selects values from a JSON document with a JSONPath expression (see jsonpath.ts
// for the supported subset). Pure computation.

import { JsonReader, runTool, toJson, ToolResult, Value } from "@exoclaw/plugin-sdk/assembly";
import { Evaluator, JsonPath, MAX_NODES } from "./jsonpath";

/** Longest result handed back, characters; longer results keep the first matches that fit. */
const MAX_OUTPUT_CHARS: i32 = 100000;
/** Longest JSON text accepted in `document`, characters. */
const MAX_DOCUMENT_CHARS: i32 = 4 * 1024 * 1024;

function handle(tool: string, input: Value): ToolResult {
  if (tool != "json_query") return ToolResult.error("unknown tool '" + (tool.length <= 40 ? tool : tool.substring(0, 40) + "...") + "'");
  if (!input.isMap()) return ToolResult.error("input must be an object {document, path}");
  const path = input.get("path");
  if (path == null || !path.isString()) return ToolResult.error("'path' must be a JSONPath string such as \"$.items[0].name\"");
  if (path.strValue.length > 2000) return ToolResult.error("'path' is longer than 2000 characters");
  const docOrNull = input.get("document");
  if (docOrNull == null) return ToolResult.error("'document' is missing: pass the JSON document (a value, or a string of JSON text)");
  let doc: Value = docOrNull;
  if (doc.isString()) {
    if (doc.strValue.length > MAX_DOCUMENT_CHARS) return ToolResult.error("'document' is longer than 4 MiB");
    const reader = new JsonReader(doc.strValue);
    const parsed = reader.read();
    // A string that is not JSON text is a JSON string value in its own right.
    if (parsed != null) doc = parsed;
    else {
      const t = doc.strValue.trimStart();
      if (t.startsWith("{") || t.startsWith("[")) return ToolResult.error("'document' is not valid JSON: " + reader.error);
    }
  }

  const jp = new JsonPath(path.strValue);
  if (jp.error.length > 0) return ToolResult.error("invalid JSONPath: " + jp.error);
  const ev = new Evaluator(doc);
  const matches = ev.run(jp.segments, doc);

  const parts = new Array<string>();
  let size = 2;
  let shown = 0;
  for (let i = 0; i < matches.length; i++) {
    const text = toJson(matches[i]);
    if (size + text.length + 1 > MAX_OUTPUT_CHARS) break;
    parts.push(text);
    size += text.length + 1;
    shown++;
  }
  const body = "[" + parts.join(",") + "]";
  if (shown < matches.length || ev.truncated) {
    const total = ev.truncated ? "more than " + MAX_NODES.toString() : matches.length.toString();
    return ToolResult.ok(
      total + " matches; the first " + shown.toString() + " are shown (results are capped at " + MAX_OUTPUT_CHARS.toString() + " characters; narrow the path):\n" + body,
    );
  }
  return ToolResult.ok(body);
}

export function call(): i32 {
  return runTool(handle);
}
