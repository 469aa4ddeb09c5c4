/**
 * Budget enforcement and metering around model calls. {@link BudgetGuard.meter} wraps a turn's
 * provider: before each call it reserves the call's worst case (its input estimate plus
 * `max_tokens`, at the model's price) on every counter with a limit (global, agent, peer; per
 * session, day, month), and after the call it settles the reservation with the provider's real
 * usage and prices that usage for the `usage` event.
 */
import type { Logger } from "pino";
import type { AgentConfig, BudgetLimits, BudgetsConfig, ModelPrice } from "../../config/index.js";
import type { SessionEvent, SessionLog } from "../../store/index.js";
import { AgentError } from "../errors.js";
import type { ModelProvider, ModelRequest, TurnEvent } from "../types.js";
import { MemoryLedger, type BudgetLedger, type Charge, type CounterLimit, type CounterWarning, type Reservation } from "./ledger.js";
import { costUsd, PriceTable, totalTokens, type CallUsage } from "./pricing.js";
import { calendarWindow, type CalendarWindow } from "./windows.js";
import { tapStream } from "../stream-tap.js";

/** A model call let through: the request to send (its model may be the cheaper fallback) and the ledger's reservation, if any. */
interface Admitted {
  request: ModelRequest;
  reservation?: number;
}

/** Options of {@link BudgetGuard}. */
export interface BudgetGuardOptions {
  budgets: BudgetsConfig;
  /** `[pricing]` overrides by `"<provider>/<model>"`. */
  pricing: Readonly<Record<string, ModelPrice>>;
  logger: Logger;
  /** Default: an in-process {@link MemoryLedger}. */
  ledger?: BudgetLedger;
  /** Clock, ms since the Unix epoch; default `Date.now`. */
  now?: () => number;
  /** Told of each budget event (warning past `warnAt`, a refused call, a downgrade), for metrics. */
  onEvent?: (kind: "warning" | "exceeded" | "downgraded", agent: string) => void;
}

/** What the usage event of a metered call carries besides its tokens. */
export interface MeteredUsage {
  provider: string;
  model: string;
  cacheReadTokens?: number;
  cacheWriteTokens?: number;
  /** Cost in USD at the price table; absent when the model has no price. */
  costUsd?: number;
}

/** A turn's metering: the provider to call through, and the hook that prices its `usage` events. */
export interface TurnMeter {
  provider: ModelProvider;
  /** Adds the last call's provider, model, cache tokens and cost to a `usage` event; other events pass unchanged. */
  annotate(ev: TurnEvent): TurnEvent;
}

type Scope = { name: string; limits: BudgetLimits | undefined };

/** A turn's counters, kept while the calendar window is the same object (calendarWindow caches it per minute). */
interface CounterMemo {
  window?: CalendarWindow;
  counters?: CounterLimit[];
}
type Window = "session" | "day" | "month";

const WINDOW_WORD: Record<Window, string> = { session: "session", day: "daily", month: "monthly" };

/** Characters per token assumed for the input estimate (real tokenizers average ~4 for English: 3 over-estimates on purpose). */
const CHARS_PER_TOKEN = 3;
/** Tokens added per call and per message for framing the estimate does not see. */
const CALL_OVERHEAD_TOKENS = 64;
const MESSAGE_OVERHEAD_TOKENS = 8;

const specChars = new WeakMap<object, number>();

/**
 * An upper estimate of a request's input tokens: characters of the system prompt, messages and
 * tool specs over {@link CHARS_PER_TOKEN}, plus framing. Used only for the reservation (the
 * settlement uses the provider's count).
 */
export function estimateInputTokens(request: Pick<ModelRequest, "system" | "messages" | "tools">): number {
  let chars = request.system?.length ?? 0;
  let tools = specChars.get(request.tools);
  if (tools === undefined) {
    tools = request.tools.length === 0 ? 0 : JSON.stringify(request.tools).length;
    specChars.set(request.tools, tools);
  }
  chars += tools;
  for (const m of request.messages) {
    for (const b of m.content) {
      if (b.type === "text") chars += b.text.length;
      else if (b.type === "tool_result") chars += b.content.length + b.toolUseId.length;
      // An image costs about 1,600 input tokens at the providers' usual scaling (Anthropic: w*h/750 for up to ~1.15 MP).
      else if (b.type === "image") chars += 1600 * CHARS_PER_TOKEN;
      else chars += b.name.length + b.id.length + JSON.stringify(b.input ?? null).length;
    }
  }
  return Math.ceil(chars / CHARS_PER_TOKEN) + CALL_OVERHEAD_TOKENS + request.messages.length * MESSAGE_OVERHEAD_TOKENS;
}

/**
 * Counter keys of one call: `<scope>|<window>`. Scopes: `global`, `agent:<id>`,
 * `peer:<channel>:<account>:<peer>` (the session key's parts after the agent, as escaped in the
 * key: a peer is counted across agents).
 */
function scopesOf(budgets: BudgetsConfig, agent: AgentConfig | undefined, agentId: string, sessionKey: string): Scope[] {
  return [
    { name: "global", limits: budgets.global },
    { name: `agent:${agentId}`, limits: agent?.budget },
    { name: `peer:${peerOf(sessionKey)}`, limits: budgets.peer },
  ];
}

/**
 * `<channel>:<account>:<peer>` of a session key `agent:<agent>:<channel>:<account>:<peer>`, parts
 * left escaped (agent ids never hold a `:`).
 * @throws AgentError `invalid_params` for a string that is not a session key
 */
function peerOf(sessionKey: string): string {
  const at = sessionKey.startsWith("agent:") ? sessionKey.indexOf(":", 6) : -1;
  if (at < 0) throw new AgentError("invalid_params", `not a session key: ${JSON.stringify(sessionKey)}`);
  return sessionKey.slice(at + 1);
}

function windowKey(w: Window, sessionKey: string, atMs: number, timeZone: string): string {
  if (w === "session") return `session:${sessionKey}`;
  const c = calendarWindow(atMs, timeZone);
  return w === "day" ? `day:${c.day}` : `month:${c.month}`;
}

/** Budgets and metering of every model call of the runtime. */
export class BudgetGuard {
  readonly prices: PriceTable;
  readonly ledger: BudgetLedger;
  /** False while {@link rebuild} runs (calls wait for it). */
  private rebuilt = true;
  private readonly now: () => number;
  /** Resolves once the ledger holds the spend already in the session log (see {@link rebuild}). */
  private ready: Promise<void> = Promise.resolve();

  constructor(private readonly options: BudgetGuardOptions) {
    this.prices = new PriceTable(options.pricing);
    this.ledger = options.ledger ?? new MemoryLedger(options.budgets.warnAt);
    this.now = options.now ?? Date.now;
  }

  /** Whether any budget is configured for this agent (else calls are metered, never refused). */
  limited(agent: AgentConfig): boolean {
    const b = this.options.budgets;
    return b.global !== undefined || b.peer !== undefined || agent.budget !== undefined;
  }

  /**
   * The counters a call of `agent` in `sessionKey` at `atMs` is charged to, with their limits
   * (`withLimitsOnly`: only those with a limit, for the reservation).
   */
  counters(agent: AgentConfig | undefined, agentId: string, sessionKey: string, atMs: number, withLimitsOnly: boolean): CounterLimit[] {
    const tz = this.options.budgets.timezone;
    const out: CounterLimit[] = [];
    for (const s of scopesOf(this.options.budgets, agent, agentId, sessionKey)) {
      const l = s.limits;
      for (const w of ["session", "day", "month"] as const) {
        const usd = l === undefined ? undefined : w === "session" ? l.sessionUsd : w === "day" ? l.dayUsd : l.monthUsd;
        const tokens = l === undefined ? undefined : w === "session" ? l.sessionTokens : w === "day" ? l.dayTokens : l.monthTokens;
        if (withLimitsOnly && usd === undefined && tokens === undefined) continue;
        out.push({
          key: `${s.name}|${windowKey(w, sessionKey, atMs, tz)}`,
          ...(usd !== undefined ? { usd } : {}),
          ...(tokens !== undefined ? { tokens } : {}),
        });
      }
    }
    return out;
  }

  /** Spent plus reserved on a counter key (as {@link counters} names them), for tests and status. */
  async spent(key: string): Promise<Charge> {
    return this.ledger.spent(key);
  }

  /**
   * Rebuilds the ledger from the `usage` events in `log` (so spend survives a restart): every
   * session updated since the start of the previous month (in the budget time zone, so the
   * current day and month are complete), all of its events (session windows). Calls wait for it.
   * Old `usage` events without a cost are priced when they name their model, else count tokens only.
   * A shared ledger (`claimRebuild`) is rebuilt by the first process that uses it only.
   */
  rebuild(log: SessionLog): Promise<void> {
    this.rebuilt = false;
    const claim = (this.ledger.claimRebuild?.() ?? Promise.resolve(true)).catch((err: unknown) => {
      // The next gateway that starts with NATS reachable adds the log's spend instead.
      this.options.logger.warn({ err }, "budgets: the shared budget ledger is unreachable at start; this gateway does not add the session log's spend to it");
      return false;
    });
    this.ready = claim
      .then((mine) => (mine ? this.scan(log) : undefined))
      .catch((err: unknown) => {
        this.options.logger.error({ err }, "budgets: cannot rebuild spend from the session log; counting from zero");
      })
      .finally(() => {
        this.rebuilt = true;
      });
    return this.ready;
  }

  private async scan(log: SessionLog): Promise<void> {
    const since = this.now() - 62 * 86_400_000;
    let cursor: string | undefined;
    let events = 0;
    // Summed per counter first: one `add` per counter (a shared ledger's add is a round trip).
    const sums = new Map<string, Charge>();
    do {
      const page = await log.listSessions({ limit: 500, ...(cursor !== undefined ? { cursor } : {}) });
      for (const s of page.sessions) {
        if (s.updatedAt < since) continue;
        for (const ev of await log.read(s.sessionKey)) {
          if (ev.kind !== "usage") continue;
          const charge = this.chargeOfEvent(ev);
          for (const c of this.counters(undefined, s.agent, s.sessionKey, ev.at, false)) {
            const sum = sums.get(c.key) ?? { usd: 0, tokens: 0 };
            sum.usd += charge.usd;
            sum.tokens += charge.tokens;
            sums.set(c.key, sum);
          }
          events++;
        }
      }
      cursor = page.nextCursor;
    } while (cursor !== undefined);
    // 64 counters at a time (a shared ledger's adds are independent round trips).
    const entries = [...sums];
    for (let i = 0; i < entries.length; i += 64) await Promise.all(entries.slice(i, i + 64).map(([key, sum]) => this.ledger.add([key], sum)));
    if (events > 0) this.options.logger.info({ usageEvents: events }, "budgets: spend rebuilt from the session log");
  }

  private chargeOfEvent(ev: Extract<SessionEvent, { kind: "usage" }>): Charge {
    const d = ev.data;
    let usd = d.costUsd ?? 0;
    if (d.costUsd === undefined && d.provider !== undefined && d.model !== undefined) {
      const p = this.prices.priceOf(d.provider, d.model);
      if (p !== undefined) usd = costUsd(p, d);
    }
    return { usd, tokens: totalTokens(d) };
  }

  /**
   * The metering of one turn: `provider` wrapped so each call is reserved, settled and priced.
   * @param agent the turn's agent configuration (its `budget`, `maxTokens`)
   */
  meter(provider: ModelProvider, agent: AgentConfig, sessionKey: string, runId: string): TurnMeter {
    let last: MeteredUsage | undefined;
    const guard = this;
    // The counters are reused while the calendar window (cached per minute) stays the same.
    const memo: CounterMemo = {};
    const metered: ModelProvider = {
      name: provider.name,
      // A tap, not an `async function*`: every event of the call passes here (stream-tap.ts).
      stream(request, signal) {
        const usage: CallUsage = { inputTokens: 0, outputTokens: 0 };
        let admitted: Admitted | undefined;
        // Who answers: the request's model on the chain's first provider, unless the resilience
        // layer failed over (its `failover` event names the next `provider/model`).
        let answering = { provider: provider.name as string, model: request.model };
        const open = async () => {
          // An agent without a limit reserves nothing (and adds nothing live: its spend is what the
          // rebuild reads from the log), so its calls need not wait for the rebuild, which reads the
          // whole store (with the durable store, after its engine has opened: docs/architecture.md, "Start-up").
          admitted = !guard.limited(agent) ? { request } : await guard.admit(provider.name, agent, sessionKey, memo, runId, request);
          answering = { provider: provider.name, model: admitted.request.model };
          return provider.stream(admitted.request, signal);
        };
        return tapStream(open, {
          event(ev) {
            if (ev.type === "failover") {
              const slash = ev.to.indexOf("/");
              if (slash > 0) answering = { provider: ev.to.slice(0, slash), model: ev.to.slice(slash + 1) };
            } else if (ev.type === "usage") {
              if (ev.inputTokens !== undefined) usage.inputTokens = ev.inputTokens;
              if (ev.outputTokens !== undefined) usage.outputTokens = ev.outputTokens;
              if (ev.cacheReadTokens !== undefined) usage.cacheReadTokens = ev.cacheReadTokens;
              if (ev.cacheWriteTokens !== undefined) usage.cacheWriteTokens = ev.cacheWriteTokens;
            }
          },
          async end() {
            const price = guard.prices.priceOf(answering.provider, answering.model);
            const cost = price === undefined ? undefined : costUsd(price, usage);
            last = {
              provider: answering.provider,
              model: answering.model,
              ...(usage.cacheReadTokens !== undefined ? { cacheReadTokens: usage.cacheReadTokens } : {}),
              ...(usage.cacheWriteTokens !== undefined ? { cacheWriteTokens: usage.cacheWriteTokens } : {}),
              ...(cost !== undefined ? { costUsd: cost } : {}),
            };
            if (admitted?.reservation !== undefined) {
              const warnings = guard.ledger.settle(admitted.reservation, { usd: cost ?? 0, tokens: totalTokens(usage) });
              guard.warn(agent.id, Array.isArray(warnings) ? warnings : await warnings);
            }
          },
        });
      },
    };
    return {
      provider: metered,
      annotate(ev) {
        if (ev.type !== "usage" || last === undefined) return ev;
        const m = last;
        last = undefined;
        const data: Extract<TurnEvent, { type: "usage" }>["data"] = {
          inputTokens: ev.data.inputTokens,
          outputTokens: ev.data.outputTokens,
          provider: m.provider,
          model: m.model,
        };
        if (m.cacheReadTokens !== undefined) data.cacheReadTokens = m.cacheReadTokens;
        if (m.cacheWriteTokens !== undefined) data.cacheWriteTokens = m.cacheWriteTokens;
        if (m.costUsd !== undefined) data.costUsd = m.costUsd;
        return { type: "usage", data };
      },
    };
  }

  /**
   * Admits one model call: reserves its worst case (at the dearest model of the agent's fallback
   * chain, which may answer it) on every limited counter; with the agent's
   * `on_exceeded = "downgrade"`, retries on its `downgrade_model` before refusing.
   * @throws AgentError `budget_exceeded` (-32011) naming the scope and window (never the amounts:
   *   the message reaches channel peers; the operator's log line has them)
   */
  private async admit(provider: string, agent: AgentConfig, sessionKey: string, memo: CounterMemo, runId: string, request: ModelRequest): Promise<Admitted> {
    if (!this.rebuilt) await this.ready;
    if (!this.limited(agent)) return { request };
    const now = this.now();
    const calendar = calendarWindow(now, this.options.budgets.timezone);
    if (memo.window !== calendar || memo.counters === undefined) {
      memo.counters = this.counters(agent, agent.id, sessionKey, now, true);
      memo.window = calendar;
    }
    const counters = memo.counters;
    if (counters.length === 0) return { request };
    const input = estimateInputTokens(request);
    const models = [request.model];
    if (agent.budget?.onExceeded === "downgrade" && agent.budget.downgradeModel !== undefined && agent.budget.downgradeModel !== request.model) {
      models.push(agent.budget.downgradeModel);
    }
    let refusal: { counter: CounterLimit; unit: "usd" | "tokens"; spent: number; amount: Charge } | undefined;
    const worst: CallUsage = { inputTokens: input, outputTokens: request.maxTokens };
    const usdLimited = counters.some((c) => c.usd !== undefined);
    for (const model of models) {
      // The call may end on any model of the agent's fallback chain: reserve at the dearest.
      let usd = 0;
      for (const ref of [{ provider, model }, ...(agent.models?.slice(1) ?? [])]) {
        const price = this.prices.priceOf(ref.provider, ref.model);
        if (price === undefined) {
          if (!usdLimited) continue;
          throw new AgentError(
            "budget_exceeded",
            `budget cannot be checked: no price for ${ref.provider}/${ref.model} (add [pricing."${ref.provider}/${ref.model}"] to the config)`,
            {
              reason: "budget_exceeded",
            },
          );
        }
        usd = Math.max(usd, costUsd(price, worst));
      }
      const amount = { usd, tokens: totalTokens(worst) };
      let r: Reservation;
      try {
        r = await this.ledger.reserve(counters, amount);
      } catch (err) {
        // A shared ledger that cannot be reached: deny by default (a hard limit is not checked
        // against a guess). docs/bus.md, "Budgets across gateways".
        this.options.logger.error({ agent: agent.id, runId, err }, "budget: the shared budget ledger cannot be reached; model call refused");
        this.options.onEvent?.("exceeded", agent.id);
        throw new AgentError("budget_exceeded", "budget cannot be checked: the shared budget ledger is unreachable; try again later", {
          reason: "budget_exceeded",
          unavailable: true,
        });
      }
      if (r.ok) {
        if (model !== request.model) {
          this.options.logger.warn(
            { agent: agent.id, runId, from: request.model, to: model, counter: refusal?.counter.key },
            "budget: call downgraded to a cheaper model",
          );
          this.options.onEvent?.("downgraded", agent.id);
        }
        return { request: model === request.model ? request : { ...request, model }, reservation: r.id };
      }
      refusal = { counter: r.counter, unit: r.unit, spent: r.spent, amount };
    }
    const c = refusal!.counter;
    const [scope, windowPart] = c.key.split("|") as [string, string];
    const window = windowPart.slice(0, windowPart.indexOf(":")) as Window;
    const limit = refusal!.unit === "usd" ? c.usd : c.tokens;
    this.options.logger.warn(
      {
        agent: agent.id,
        runId,
        counter: c.key,
        unit: refusal!.unit,
        spent: refusal!.spent,
        limit,
        reservation: refusal!.unit === "usd" ? refusal!.amount.usd : refusal!.amount.tokens,
      },
      "budget exceeded: model call refused",
    );
    this.options.onEvent?.("exceeded", agent.id);
    const who = scope === "global" ? "gateway" : scope.startsWith("agent:") ? "agent" : "conversation";
    const resets = window === "session" ? "" : ` (it resets at the next ${window === "day" ? "midnight" : "month"}, ${this.options.budgets.timezone})`;
    throw new AgentError(
      "budget_exceeded",
      `budget exceeded: the ${WINDOW_WORD[window]} ${refusal!.unit === "usd" ? "spend" : "token"} budget of this ${who} is used up${resets}`,
      {
        reason: "budget_exceeded",
        scope: who,
        window,
        unit: refusal!.unit,
      },
    );
  }

  /** Logs and reports the warnings a settlement returned. */
  private warn(agentId: string, warnings: readonly CounterWarning[]): void {
    for (const w of warnings) {
      this.options.logger.warn(
        { agent: agentId, counter: w.key, unit: w.unit, spent: w.spent, limit: w.limit, warnAt: this.options.budgets.warnAt },
        "budget warning: counter past its warning fraction",
      );
      this.options.onEvent?.("warning", agentId);
    }
  }
}
