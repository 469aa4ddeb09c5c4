/**
 * The model input for a turn: the projection of the session's events, compacted first (older
 * turns folded into a summary by the agent's own model) when it would not fit the agent's
 * context window.
 */
import type { Logger } from "pino";
import type { AgentConfig } from "../config/index.js";
import { toErrorObject } from "../protocol/index.js";
import type { ToolSpec } from "../plugins/index.js";
import { mediaRefsOf, type MediaStore } from "./media-store.js";
import type { SessionEvent } from "../store/index.js";
import type { CachedSessionLog } from "./cached-log.js";
import { estimateTokens, messageChars, planCompaction, renderTranscript, summarize, summaryBudget } from "./compaction.js";
import type { ChatMessage, ModelProvider } from "./types.js";

/** One turn's inputs to {@link turnHistory}. */
export interface TurnHistoryRequest {
  config: AgentConfig;
  /** The turn's effective system prompt (soul file included). */
  system: string | undefined;
  provider: ModelProvider;
  sessionKey: string;
  /** The session's `readHistory` events. */
  events: SessionEvent[];
  /** The turn's user content. */
  content: string;
  /** The turn's run (the compaction event carries it). */
  runId: string;
  /** The run id of the turn's first message (nothing from it on is folded). */
  firstRunId: string;
  /** The tool specs offered to the model (count against the window). */
  specs: ToolSpec[];
  /** The turn's signal: aborts the summarization call. */
  signal: AbortSignal;
  /** Called with the summarization call's token usage, when one was made. */
  onUsage: (usage: { inputTokens: number; outputTokens: number }) => void;
}

/** Where {@link turnHistory} writes the compaction and logs. */
export interface TurnHistoryDeps {
  sessions: CachedSessionLog;
  logger: Logger;
  /** Stored inbound images (`message_received.media`); absent = earlier images are text only. */
  media?: MediaStore | undefined;
}

/**
 * The model input for a turn: the projection of the session's events, compacted first when
 * it would not fit the agent's context window (estimated with the turn's effective system
 * prompt, soul file included). A failed summarization is logged and the full history is used
 * (the provider then decides). The messages may be shared with the session's cached projection
 * (cached-log.ts): they must not be mutated.
 * @throws the signal's reason when the turn is aborted during summarization; StoreError
 */
export async function turnHistory(deps: TurnHistoryDeps, turn: TurnHistoryRequest): Promise<ChatMessage[]> {
  const { config, system, provider, sessionKey, events, content, runId, firstRunId, specs, signal, onUsage } = turn;
  // Earlier messages' images, read from the media directory (the projection itself stays pure).
  // None to load (most histories): no map and no await (the projection is the same without one).
  const refs = deps.media !== undefined ? mediaRefsOf(events) : [];
  const images = refs.length > 0 ? await deps.media!.load(refs) : undefined;
  // Resumed from the previous turn's projection when the session's history is cached.
  const messages = deps.sessions.projectHistory(sessionKey, events, images);
  const window = config.contextWindow;
  const historyTokens = estimateTokens(messageChars(messages));
  const contentTokens = estimateTokens(content.length + (system?.length ?? 0));
  if (historyTokens + contentTokens <= window / 2) return messages; // far from the limit: skip the tool-spec estimate
  const fixed = contentTokens + (specs.length > 0 ? estimateTokens(JSON.stringify(specs).length) : 0);
  if (historyTokens + fixed <= window) return messages;
  const budget = summaryBudget(window, config.maxTokens);
  const plan = planCompaction(events, firstRunId, window, fixed, budget);
  if (!plan) return messages;
  let summary: string;
  try {
    const transcript = renderTranscript(plan.folded, Math.max(4000, (window - budget) * 4));
    const out = await summarize(provider, config.model, transcript, budget, signal);
    onUsage(out.usage);
    summary = out.summary;
  } catch (err) {
    if (signal.aborted) throw err;
    deps.logger.warn({ sessionKey, runId, error: toErrorObject(err).message }, "compaction failed: the summarization call failed; using the full history");
    return messages;
  }
  if (summary.length === 0) return messages;
  deps.sessions.drop(sessionKey);
  await deps.sessions.log.append(sessionKey, [{ kind: "compaction", runId, data: { summary, upToSeq: plan.upToSeq } }]);
  deps.logger.info(
    { sessionKey, runId, upToSeq: plan.upToSeq, foldedTurns: plan.foldedTurns, keptTurns: plan.keptTurns, historyTokens, window },
    "session compacted",
  );
  return deps.sessions.projectHistory(sessionKey, await deps.sessions.readHistory(sessionKey), images);
}
