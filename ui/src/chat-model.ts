/**
 * The WebChat transcript: built from stored session events (history on reload) and updated by
 * `chat.event` notifications while a turn streams. Pure functions over plain data.
 */
import type { ChatEventParams, SessionEvent } from "./client/index.js";

export type Entry =
  | { kind: "user"; text: string }
  | { kind: "assistant"; text: string; streaming?: boolean }
  | { kind: "tool"; id: string; name: string; input: unknown; output?: string; isError?: boolean }
  | { kind: "error"; text: string };

/** The transcript of a session's events after its latest reset. */
export function fromHistory(events: SessionEvent[]): Entry[] {
  let start = 0;
  events.forEach((e, i) => {
    if (e.kind === "reset") start = i + 1;
  });
  const out: Entry[] = [];
  for (const e of events.slice(start)) {
    if (e.kind === "message_received") out.push({ kind: "user", text: e.data.content });
    else if (e.kind === "assistant_text") {
      const prev = out.at(-1);
      if (prev?.kind === "assistant") prev.text += e.data.text;
      else out.push({ kind: "assistant", text: e.data.text });
    } else if (e.kind === "tool_use") out.push({ kind: "tool", id: e.data.id, name: e.data.name, input: e.data.input });
    else if (e.kind === "tool_result") {
      const card = out.find((x): x is Extract<Entry, { kind: "tool" }> => x.kind === "tool" && x.id === e.data.toolUseId);
      if (card) {
        card.output = e.data.content;
        card.isError = e.data.isError;
      }
    } else if (e.kind === "error") out.push({ kind: "error", text: e.data.message });
  }
  return out;
}

/**
 * Applies one streamed event to the transcript of the running turn (`turn`: the entries since
 * the user's message). Returns a new array.
 */
export function applyEvent(turn: Entry[], ev: ChatEventParams): Entry[] {
  const out = turn.map((e) => ({ ...e })) as Entry[];
  const last = out.at(-1);
  switch (ev.type) {
    case "text": {
      const { delta } = ev.data as { delta: string };
      if (last?.kind === "assistant") last.text += delta;
      else out.push({ kind: "assistant", text: delta, streaming: true });
      return out;
    }
    case "tool_use": {
      const d = ev.data as { id: string; name: string; input: unknown };
      out.push({ kind: "tool", id: d.id, name: d.name, input: d.input });
      return out;
    }
    case "tool_result": {
      const d = ev.data as { toolUseId: string; content: string; isError: boolean };
      const card = out.find((x): x is Extract<Entry, { kind: "tool" }> => x.kind === "tool" && x.id === d.toolUseId);
      if (card) {
        card.output = d.content;
        card.isError = d.isError;
      }
      return out;
    }
    case "failover": {
      // docs/protocol.md, "Failover": drop what this model call streamed (since the last tool result).
      if (!(ev.data as { discard: boolean }).discard) return out;
      let cut = out.length;
      while (cut > 0 && !(out[cut - 1]!.kind === "tool" && (out[cut - 1] as { output?: string }).output !== undefined)) cut--;
      return out.slice(0, cut);
    }
    case "error":
      out.push({ kind: "error", text: (ev.data as { message: string }).message });
      return out;
    default:
      return out;
  }
}
