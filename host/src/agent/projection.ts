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
 * Where a projection's scan of a session's events stood with nothing pending, and what it had
 * rendered up to there: {@link projectIncremental} resumes from it instead of projecting the whole
 * history again (a turn then projects the events since the previous turn, not every turn).
 *
 * "Nothing pending": every message so far has started its turn, and every turn has its outcome
 * (`turn_ended` / `error`). From such a point on, the projection of the later events does not
 * depend on the earlier ones (their turns are closed: nothing later can change them), except
 * through a later `reset` or `compaction`, which make {@link projectIncremental} start over.
 *
 * Valid only for a later array that holds the same event objects at `0` and `index` (a session
 * log cache's array, which only grows; history-cache.ts keeps it with that array and drops both
 * together). Never taken past a message with stored images (their blocks depend on the media
 * loaded for each turn), so a session's image turns are projected in full. A message that never
 * starts its turn (dropped from a full queue: its `error` names a run that never started) stays
 * pending in the projection's rules, so the checkpoint stays before it: later turns of that
 * session are projected from there (still exactly; only less is saved).
 */
export interface ProjectionCheckpoint {
  /** The first event of the array projected (seq order). */
  readonly first: SessionEvent;
  /** Index of the last event covered, in that array. */
  readonly index: number;
  /** The event at `index`. */
  readonly last: SessionEvent;
  /** The projection of the events up to `index`; shared, never mutated (copied before a merge). */
  readonly messages: readonly ChatMessage[];
  /** The compaction's `upToSeq` in force (0 without one): later turns at or below it are folded too. */
  readonly cutoff: number;
}

/** The result of {@link projectIncremental}. */
export interface IncrementalProjection {
  /** `projectHistory(events, images)`: a new array; its messages may be shared with checkpoints, so they must not be mutated. */
  messages: ChatMessage[];
  /** The furthest point with nothing pending (the given one if nothing moved it on), or undefined when there is none. */
  checkpoint: ProjectionCheckpoint | undefined;
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
  return projectIncremental(events, images, undefined).messages;
}

/**
 * {@link projectHistory}, resumed from `from` when it is valid for `events` (see
 * {@link ProjectionCheckpoint}; otherwise projected in full), with the checkpoint to resume from
 * next time. The messages are the same as `projectHistory(events, images)` gives, either way.
 *
 * @param events the session's `readHistory` events (any order; sorted by seq here when they are not)
 * @param images stored images by sha256, as for {@link projectHistory}
 * @param from a checkpoint returned for an earlier, shorter state of the same array
 */
export function projectIncremental(
  events: readonly SessionEvent[],
  images: ReadonlyMap<string, ImageInput> | undefined,
  from: ProjectionCheckpoint | undefined,
): IncrementalProjection {
  const sorted = inSeqOrder(events) ? events : [...events].sort((a, b) => a.seq - b.seq);
  if (from !== undefined && resumable(sorted, from)) {
    return render(sorted, from.index + 1, from.cutoff, undefined, images, from.messages, from);
  }
  let start = 0;
  for (let i = sorted.length - 1; i >= 0; i--) {
    if (sorted[i]!.kind === "reset") {
      start = i + 1;
      break;
    }
  }
  let compaction: SessionEventOf<"compaction"> | undefined;
  let compactionAt = start;
  for (let i = start; i < sorted.length; i++) {
    const e = sorted[i]!;
    if (e.kind === "compaction") {
      compaction = e;
      compactionAt = i;
    }
  }
  const lead: ChatMessage[] = compaction
    ? [
        { role: "user", content: [{ type: "text", text: COMPACTION_SUMMARY_PREFIX + compaction.data.summary }] },
        { role: "assistant", content: [{ type: "text", text: COMPACTION_SUMMARY_ACK }] },
      ]
    : [];
  return render(sorted, start, compaction?.data.upToSeq ?? 0, compactionAt, images, lead, undefined);
}

const inSeqOrder = (events: readonly SessionEvent[]): boolean => {
  for (let i = 1; i < events.length; i++) if (events[i - 1]!.seq > events[i]!.seq) return false;
  return true;
};

/** Whether `from` covers a prefix of `sorted` and nothing after it resets or compacts the session. */
function resumable(sorted: readonly SessionEvent[], from: ProjectionCheckpoint): boolean {
  if (sorted[0] !== from.first || sorted[from.index] !== from.last) return false;
  for (let i = from.index + 1; i < sorted.length; i++) {
    const kind = sorted[i]!.kind;
    if (kind === "reset" || kind === "compaction") return false;
  }
  return true;
}

/**
 * Scans `sorted[start..]` into turns and renders the completed ones after `lead` (the messages
 * before `start`, shared: copied before a merge changes one). Records the last point with
 * nothing pending at or after `checkpointFrom` (undefined: any) as the new checkpoint.
 */
function render(
  sorted: readonly SessionEvent[],
  start: number,
  cutoff: number,
  checkpointFrom: number | undefined,
  images: ReadonlyMap<string, ImageInput> | undefined,
  lead: readonly ChatMessage[],
  from: ProjectionCheckpoint | undefined,
): IncrementalProjection {
  const turns: Turn[] = [];
  const unstarted: Turn[] = [];
  const byRun = new Map<string, Turn>();
  let current: Turn | undefined;
  // Turns without an outcome yet (steered ones included: they close with their run's turn_ended).
  let open = 0;
  // The last point with nothing pending: index in `sorted`, and how many turns it covers.
  let quietAt = -1;
  let quietTurns = 0;
  let media = false;
  const settle = (t: Turn, outcome: "ended" | "failed") => {
    t.outcome = outcome;
    open--;
  };
  for (let i = start; i < sorted.length; i++) {
    const e = sorted[i]!;
    switch (e.kind) {
      case "message_received": {
        const t: Turn = { message: e, started: false, parts: [] };
        if (e.runId !== undefined) t.runId = e.runId;
        turns.push(t);
        unstarted.push(t);
        open++;
        // Image blocks depend on the media loaded for the turn: no checkpoint from here on.
        if (e.data.media !== undefined && e.data.media.length > 0) media = true;
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
        if (t && t.started && !t.outcome) settle(t, e.kind === "turn_ended" ? "ended" : "failed");
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
    if (open === 0 && current === undefined && !media && (checkpointFrom === undefined || i >= checkpointFrom)) {
      quietAt = i;
      quietTurns = turns.length;
    }
  }

  const out: ChatMessage[] = lead.slice();
  // Messages `out[0..shared)` are also in a checkpoint: copied before a merge changes them.
  let shared = out.length;
  let checkpoint = from;
  for (let n = 0; n <= turns.length; n++) {
    if (n === quietTurns && quietAt >= 0) {
      checkpoint = { first: sorted[0]!, index: quietAt, last: sorted[quietAt]!, messages: out.slice(), cutoff };
      shared = out.length;
    }
    if (n === turns.length) break;
    const t = turns[n]!;
    if (t.outcome !== "ended" || t.steered || t.message.seq <= cutoff) continue;
    const messages = turnMessages(t, images);
    if (!messages) continue;
    let prev = out[out.length - 1];
    const first = messages[0]!;
    if (prev && prev.role === "user" && first.role === "user") {
      if (out.length <= shared) {
        prev = copyMessage(prev);
        out[out.length - 1] = prev;
      }
      if (isText(prev) && isText(first)) {
        // Messages answered together (queue mode `collect`: each but the last closes with no
        // reply of its own) read as one user message, joined the way the turn's input was.
        (prev.content[0] as { text: string }).text += USER_TEXT_SEPARATOR + (first.content[0] as { text: string }).text;
      } else {
        // The same with a group message's sender line: the blocks follow each other.
        prev.content.push(...first.content);
      }
      for (let k = 1; k < messages.length; k++) out.push(messages[k]!);
    } else for (const m of messages) out.push(m);
  }
  return { messages: out, checkpoint };
}

/** A copy of `m` that a merge may change without changing `m` (its blocks are copied too). */
const copyMessage = (m: ChatMessage): ChatMessage => ({ role: m.role, content: m.content.map((b) => ({ ...b })) });

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
