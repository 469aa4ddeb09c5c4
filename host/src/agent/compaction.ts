/**
 * Compaction: keeping a session's model input within the agent's `context_window` by folding
 * older turns into a summary written by the agent's own model.
 *
 * Token counts here are estimates: characters / 4, rounded up (the rule of thumb for English
 * with current tokenizers). They decide *when* to compact and *how much* to keep; the provider
 * still enforces its real limit.
 */
import { projectHistory } from "./projection.js";
import type { SessionEvent } from "../store/index.js";
import type { ChatMessage, ModelProvider } from "./types.js";

/** System prompt of the summarization call. */
export const SUMMARY_SYSTEM_PROMPT =
  "You condense conversations for an AI assistant that will continue them. Summarize the conversation you are given: " +
  "keep facts, names, numbers, decisions, tool results that still matter, open questions and the user's preferences; " +
  "drop small talk. Write only the summary, in the third person, as briefly as the content allows.";

/** Prefix of the user message that carries the transcript to summarize. */
export const SUMMARY_REQUEST_PREFIX = "Summarize this conversation:\n\n";

/** Estimated tokens of `chars` characters: chars / 4, rounded up. */
export function estimateTokens(chars: number): number {
  return Math.ceil(chars / 4);
}

/** Characters of the text a model sees from these messages (text, tool names and inputs, tool results). */
/** What an image counts as in {@link messageChars}: about 1,600 tokens (providers scale images to roughly a megapixel). */
const IMAGE_CHARS = 6400;

export function messageChars(messages: readonly ChatMessage[]): number {
  let n = 0;
  for (const m of messages) {
    for (const b of m.content) {
      if (b.type === "text") n += b.text.length;
      else if (b.type === "tool_use") n += b.name.length + JSON.stringify(b.input ?? null).length;
      else if (b.type === "image") n += IMAGE_CHARS;
      else n += b.content.length;
    }
  }
  return n;
}

/** Summary length budget for a context window, tokens: window / 8, between 64 and 2048, at most `maxTokens`. */
export function summaryBudget(contextWindow: number, maxTokens: number): number {
  return Math.max(1, Math.min(maxTokens, Math.max(64, Math.min(2048, Math.floor(contextWindow / 8)))));
}

/** What to fold: everything of the turns whose message has `seq <= upToSeq`. */
export interface CompactionPlan {
  /** The compaction event's `upToSeq`. */
  upToSeq: number;
  /** The projection of what is folded (an earlier summary first, if any), to summarize. */
  folded: ChatMessage[];
  /** Turns folded (not counting an earlier summary). */
  foldedTurns: number;
  /** Turns kept verbatim (before the current one). */
  keptTurns: number;
}

/**
 * Decides what to fold (pure). Folds the oldest turns until the kept turns, the summary budget
 * and `fixedTokens` (system prompt, tool specs, the new message) fit in half the window, so
 * compaction does not run again on the very next turn; folds every earlier turn if that is what
 * it takes. The current run's message (and anything after it) is never folded.
 * @param events `SessionLog.readHistory` output (after the latest reset)
 * @param currentRunId the run about to start
 * @returns undefined when nothing before the current turn can be folded
 */
export function planCompaction(
  events: readonly SessionEvent[],
  currentRunId: string,
  contextWindow: number,
  fixedTokens: number,
  summaryTokens: number,
): CompactionPlan | undefined {
  let previousCut = 0;
  for (const e of events) if (e.kind === "compaction") previousCut = e.data.upToSeq;
  const messages = events.filter((e) => e.kind === "message_received" && e.seq > previousCut).sort((a, b) => a.seq - b.seq);
  const current = messages.find((m) => m.runId === currentRunId);
  const prior = current ? messages.filter((m) => m.seq < current.seq) : messages;
  if (prior.length === 0) return undefined;

  const byRun = new Map<string, SessionEvent[]>();
  for (const e of events) {
    if (e.runId === undefined) continue;
    let list = byRun.get(e.runId);
    if (!list) byRun.set(e.runId, (list = []));
    list.push(e);
  }
  const turnTokens = prior.map((m) => {
    const own = m.runId !== undefined ? byRun.get(m.runId) : undefined;
    return estimateTokens(own ? messageChars(projectHistory(own)) : m.kind === "message_received" ? m.data.content.length : 0);
  });
  const target = Math.floor(contextWindow / 2) - summaryTokens - fixedTokens;
  let folded = prior.length;
  let kept = 0;
  for (let f = prior.length - 1; f >= 1; f--) {
    // Keeping turns f..end: add them newest first while they fit.
    if (kept + turnTokens[f]! > target) break;
    kept += turnTokens[f]!;
    folded = f;
  }
  const upToSeq = folded < prior.length ? prior[folded]!.seq - 1 : current ? current.seq - 1 : Math.max(...events.map((e) => e.seq));
  const foldedMessages = projectHistory(events.filter((e) => !(e.kind === "message_received" && e.seq > upToSeq)));
  if (foldedMessages.length === 0) return undefined;
  return { upToSeq, folded: foldedMessages, foldedTurns: folded, keptTurns: prior.length - folded };
}

/**
 * A plain-text transcript of messages for the summarization call, at most `maxChars`
 * characters (the middle is cut when longer: the head carries an earlier summary, the tail the
 * latest turns).
 */
export function renderTranscript(messages: readonly ChatMessage[], maxChars: number): string {
  const names = new Map<string, string>();
  const parts: string[] = [];
  for (const m of messages) {
    for (const b of m.content) {
      if (b.type === "text") parts.push(`${m.role === "user" ? "User" : "Assistant"}: ${b.text}`);
      else if (b.type === "tool_use") {
        names.set(b.id, b.name);
        parts.push(`Assistant called the tool ${b.name} with ${JSON.stringify(b.input ?? null)}`);
      } else if (b.type === "image") parts.push(`${m.role === "user" ? "User" : "Assistant"}: [an image]`);
      else parts.push(`The tool ${names.get(b.toolUseId) ?? "call"} ${b.isError ? "failed" : "returned"}: ${b.content}`);
    }
  }
  const text = parts.join("\n\n");
  if (text.length <= maxChars) return text;
  const marker = "\n\n[… part of the conversation omitted …]\n\n";
  const room = Math.max(0, maxChars - marker.length);
  const head = Math.floor(room / 4);
  return text.slice(0, head) + marker + text.slice(text.length - (room - head));
}

/**
 * Asks the model for a summary of `transcript` (no tools), at most `maxTokens` tokens; a longer
 * answer is cut at `maxTokens * 4` characters.
 * @returns the summary and the call's token usage
 * @throws whatever the provider throws (ProviderError, abort)
 */
export async function summarize(
  provider: ModelProvider,
  model: string,
  transcript: string,
  maxTokens: number,
  signal: AbortSignal,
): Promise<{ summary: string; usage: { inputTokens: number; outputTokens: number } }> {
  let text = "";
  const usage = { inputTokens: 0, outputTokens: 0 };
  const request = {
    model,
    system: SUMMARY_SYSTEM_PROMPT,
    messages: [{ role: "user" as const, content: [{ type: "text" as const, text: SUMMARY_REQUEST_PREFIX + transcript }] }],
    tools: [],
    maxTokens,
  };
  for await (const ev of provider.stream(request, signal)) {
    if (ev.type === "text") text += ev.delta;
    else if (ev.type === "failover" && ev.discard) text = "";
    else if (ev.type === "usage") {
      if (ev.inputTokens !== undefined) usage.inputTokens = ev.inputTokens;
      if (ev.outputTokens !== undefined) usage.outputTokens = ev.outputTokens;
    }
  }
  const limit = maxTokens * 4;
  const summary = text.trim();
  return { summary: summary.length > limit ? `${summary.slice(0, limit - 1)}…` : summary, usage };
}
