import type { SessionEvent, SessionEventOf } from "../store/index.js";
import type { ChatMessage, ContentBlock, ImageInput } from "./types.js";
import { storedSender, userContent } from "./user-message.js";

/** Text of the user message that carries a compaction summary at the start of the projection. */
export const COMPACTION_SUMMARY_PREFIX = "[Summary of the earlier conversation]\n\n";
/** The assistant's acknowledgement that follows the summary, so roles keep alternating. */
export const COMPACTION_SUMMARY_ACK = "Understood. I will continue from this summary.";

interface Turn {
  message: SessionEventOf<"message_received">;
  runId?: string;
  started: boolean;
  parts: SessionEvent[];
  outcome?: "ended" | "failed";
  /** Steered into another run (queue mode `steer`): rendered inside that run, not on its own. */
  steered?: true;
}

/**
 * Projects a session's events onto provider-neutral chat messages (pure).
 *
 * - Everything up to and including the latest `reset` is ignored.
 * - The latest `compaction` (after that reset) replaces the events it covers (`seq <= upToSeq`,
 *   and every turn whose user message is among them) with a leading exchange: a user message
 *   `COMPACTION_SUMMARY_PREFIX + summary` and the assistant reply `COMPACTION_SUMMARY_ACK`.
 *   (`ChatMessage` has no system role; a leading exchange keeps user/assistant alternation
 *   valid for every provider.)
 * - Only completed turns contribute: a `message_received` whose turn ended with `turn_ended`
 *   yields the user's text, then the turn's `assistant_text`/`tool_use` events as assistant
 *   messages and its `tool_result` events as user messages, in event order (adjacent texts
 *   concatenate). Turns that failed (`error`) or are still pending contribute nothing, not even
 *   the user's message — the same as the runtime's rule that a failed turn leaves history as
 *   it was. A completed turn whose tool calls and results do not pair up is dropped too, so the
 *   result is always valid provider input.
 * - Consecutive user messages (a turn with no reply of its own, e.g. a message folded into the
 *   next one's turn by queue mode `collect`, whose `turn_ended.data.runId` names that turn)
 *   become one user message, their texts joined by a blank line, so roles keep alternating.
 * - `usage`, `turn_started` and dedupe fields do not show; a `send_file` call's long content is
 *   elided from its input (see `historyInput`).
 * - A message's stored images (`message_received.media`) found in `images` (by sha256, loaded
 *   by the caller: media-store.ts) are its image blocks again, between the sender line and the
 *   text; without `images`, or for one not found, only the text (with its attachment line) shows.
 *
 * - A message steered into a running turn (queue mode `steer`: its `turn_started` names another
 *   run that has already started and not ended) shows inside that turn, as user text at that
 *   point (after the tool results it followed), the way the model saw it; it does not show on
 *   its own.
 *
 * Turns are matched to messages by run id when `message_received` carries the run's `runId`,
 * otherwise in arrival order (a session's turns run one at a time). Events of a turn are those
 * with its run id, or without a run id while it is the turn in progress.
 */
export function projectHistory(events: readonly SessionEvent[], images?: ReadonlyMap<string, ImageInput>): ChatMessage[] {
  const sorted = [...events].sort((a, b) => a.seq - b.seq);
  let start = 0;
  for (let i = sorted.length - 1; i >= 0; i--) {
    if (sorted[i]!.kind === "reset") {
      start = i + 1;
      break;
    }
  }
  const live = sorted.slice(start);
  let compaction: SessionEventOf<"compaction"> | undefined;
  for (const e of live) if (e.kind === "compaction") compaction = e;
  const cutoff = compaction?.data.upToSeq ?? 0;

  const turns: Turn[] = [];
  const unstarted: Turn[] = [];
  const byRun = new Map<string, Turn>();
  let current: Turn | undefined;
  for (const e of live) {
    switch (e.kind) {
      case "message_received": {
        const t: Turn = { message: e, started: false, parts: [] };
        if (e.runId !== undefined) t.runId = e.runId;
        turns.push(t);
        unstarted.push(t);
        break;
      }
      case "turn_started": {
        const runId = e.runId ?? e.data.runId;
        let idx = unstarted.findIndex((t) => t.runId === runId);
        if (idx < 0) idx = unstarted.findIndex((t) => t.runId === undefined);
        if (idx < 0) {
          current = undefined;
          break;
        }
        const t = unstarted.splice(idx, 1)[0]!;
        const into = e.data.runId !== runId ? byRun.get(e.data.runId) : undefined;
        if (into && into.started && !into.outcome) {
          // Steered: the message joined run `into` here (collect-folded messages start before their run).
          t.runId = runId;
          t.started = true;
          t.steered = true;
          byRun.set(runId, t);
          into.parts.push(t.message);
          break;
        }
        t.runId = runId;
        t.started = true;
        byRun.set(runId, t);
        current = t;
        break;
      }
      case "turn_ended":
      case "error": {
        const runId = e.runId ?? (e.kind === "turn_ended" ? e.data.runId : undefined);
        // An error for a message that never started (dropped from a full queue, superseded)
        // names a run not in `byRun`: it must not close the turn in progress.
        const t = runId !== undefined ? byRun.get(runId) : current;
        if (t && t.started && !t.outcome) t.outcome = e.kind === "turn_ended" ? "ended" : "failed";
        if (t === current) current = undefined;
        break;
      }
      case "assistant_text":
      case "tool_use":
      case "tool_result": {
        const t = (e.runId !== undefined ? byRun.get(e.runId) : undefined) ?? (e.runId === undefined ? current : undefined);
        if (t && !t.outcome) t.parts.push(e);
        break;
      }
      default:
        break;
    }
  }

  const out: ChatMessage[] = [];
  if (compaction) {
    out.push({ role: "user", content: [{ type: "text", text: COMPACTION_SUMMARY_PREFIX + compaction.data.summary }] });
    out.push({ role: "assistant", content: [{ type: "text", text: COMPACTION_SUMMARY_ACK }] });
  }
  for (const t of turns) {
    if (t.outcome !== "ended" || t.steered || t.message.seq <= cutoff) continue;
    const messages = turnMessages(t, images);
    if (!messages) continue;
    const prev = out[out.length - 1];
    const first = messages[0]!;
    if (prev && prev.role === "user" && first.role === "user" && isText(prev) && isText(first)) {
      // Messages answered together (queue mode `collect`: each but the last closes with no
      // reply of its own) read as one user message, joined the way the turn's input was.
      (prev.content[0] as { text: string }).text += USER_TEXT_SEPARATOR + (first.content[0] as { text: string }).text;
      out.push(...messages.slice(1));
    } else if (prev && prev.role === "user" && first.role === "user") {
      // The same with a group message's sender line: the blocks follow each other.
      prev.content.push(...first.content);
      out.push(...messages.slice(1));
    } else out.push(...messages);
  }
  return out;
}

/** Content of a `send_file` call longer than this (characters) is elided from later turns' history. */
const SENT_FILE_KEEP_CHARS = 1024;

/**
 * A tool call's input as later turns see it: a `send_file` call's `data_base64` / `text` over
 * {@link SENT_FILE_KEEP_CHARS} becomes a short note (the file was sent; resending up to 1 MiB of
 * base64 with every later request would only cost tokens). Other calls are unchanged.
 */
function historyInput(name: string, input: unknown): unknown {
  if (name !== "send_file" || input === null || typeof input !== "object" || Array.isArray(input)) return input;
  const o = { ...(input as Record<string, unknown>) };
  for (const k of ["data_base64", "text"]) {
    const v = o[k];
    if (typeof v === "string" && v.length > SENT_FILE_KEEP_CHARS) o[k] = `[${v.length} characters, omitted from the history]`;
  }
  return o;
}

/** How consecutive user messages are joined: the runtime's `COLLECT_SEPARATOR`. */
const USER_TEXT_SEPARATOR = "\n\n";

const isText = (m: ChatMessage): boolean => m.content.length === 1 && m.content[0]!.type === "text";

/** The messages of one completed turn, or undefined when its tool calls and results do not pair up. */
function turnMessages(t: Turn, images: ReadonlyMap<string, ImageInput> | undefined): ChatMessage[] | undefined {
  // Stored images (media-store.ts) found for this message; a missing one leaves its metadata line only.
  const stored = images === undefined ? [] : (t.message.data.media ?? []).flatMap((r) => images.get(r.sha256) ?? []);
  const msgs: ChatMessage[] = [
    { role: "user", content: userContent(t.message.data.content, storedSender(t.message.data), stored.length > 0 ? stored : undefined) },
  ];
  let toolResultsOpen = false;
  for (const e of t.parts) {
    const last = msgs[msgs.length - 1]!;
    if (e.kind === "assistant_text" || e.kind === "tool_use") {
      const target = last.role === "assistant" ? last : (msgs.push({ role: "assistant", content: [] }), msgs[msgs.length - 1]!);
      if (e.kind === "assistant_text") {
        const prev = target.content[target.content.length - 1];
        // Text after a tool call in the same model call is rare; keep it as its own block then.
        if (prev?.type === "text") prev.text += e.data.text;
        else if (e.data.text.length > 0) target.content.push({ type: "text", text: e.data.text });
      } else {
        target.content.push({ type: "tool_use", id: e.data.id, name: e.data.name, input: historyInput(e.data.name, e.data.input) });
      }
      toolResultsOpen = false;
    } else if (e.kind === "message_received") {
      // A steered message: user text after the tool results it followed (loop.ts appends it there).
      const block: ContentBlock = { type: "text", text: e.data.content };
      if (last.role === "user") last.content.push(block);
      else msgs.push({ role: "user", content: [block] });
      toolResultsOpen = true;
    } else if (e.kind === "tool_result") {
      const block: ContentBlock = { type: "tool_result", toolUseId: e.data.toolUseId, content: e.data.content, isError: e.data.isError };
      if (toolResultsOpen) last.content.push(block);
      else {
        msgs.push({ role: "user", content: [block] });
        toolResultsOpen = true;
      }
    }
  }
  const cleaned = msgs.filter((m) => m.content.length > 0);
  return pairsUp(cleaned) ? cleaned : undefined;
}

/** Every assistant tool_use is answered in the next message, and every tool_result answers the previous one. */
function pairsUp(msgs: ChatMessage[]): boolean {
  for (let i = 0; i < msgs.length; i++) {
    const m = msgs[i]!;
    const uses = m.role === "assistant" ? m.content.filter((b) => b.type === "tool_use").map((b) => (b as { id: string }).id) : [];
    const results = m.content.filter((b) => b.type === "tool_result").map((b) => (b as { toolUseId: string }).toolUseId);
    if (results.length > 0) {
      const prev = msgs[i - 1];
      const asked =
        prev?.role === "assistant" ? new Set(prev.content.filter((b) => b.type === "tool_use").map((b) => (b as { id: string }).id)) : new Set<string>();
      if (!results.every((r) => asked.has(r))) return false;
    }
    if (uses.length > 0) {
      const next = msgs[i + 1];
      const answered = new Set(
        next?.role === "user" ? next.content.filter((b) => b.type === "tool_result").map((b) => (b as { toolUseId: string }).toolUseId) : [],
      );
      if (!uses.every((u) => answered.has(u))) return false;
    }
  }
  return true;
}
