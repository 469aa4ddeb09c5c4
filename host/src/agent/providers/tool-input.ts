import { ErrorCode } from "../../protocol/index.js";
import { ProviderError } from "../errors.js";

/**
 * Parses a tool call's accumulated JSON arguments. Empty means `{}` (Anthropic sends no
 * `input_json_delta` for a tool without input).
 * @throws ProviderError -32000 if the model produced invalid JSON
 */
export function parseToolInput(json: string, provider: string, tool: string): unknown {
  if (json.trim() === "") return {};
  try {
    return JSON.parse(json);
  } catch {
    throw new ProviderError(ErrorCode.ProviderError, `provider ${provider}: tool call "${tool}" has invalid JSON arguments`);
  }
}
