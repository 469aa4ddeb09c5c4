// Types for script.mjs, so TypeScript tests can import the emulator's model rules.
export interface Conversation {
  tools: string[];
  lastUserText: string;
  toolResults: string[] | null;
}
export type Part = { type: "text"; chunks: string[] } | { type: "tool_call"; name: string; input: Record<string, unknown> };
export type Reply =
  | { kind: "message"; parts: Part[]; stop: "end_turn" | "tool_use" }
  | {
      kind: "failure";
      mode: "http_500" | "http_400" | "http_401" | "cut" | "error_event" | "stall_after_headers" | "stall_before_headers";
      message: string;
      partial: string;
      quoteCredential: boolean;
    };
export function decide(conv: Conversation): Reply;
export function useToolCall(text: string, tools: string[]): Extract<Part, { type: "tool_call" }> | null;
