/**
 * One retry layer at the provider boundary, the same for every provider (the SDKs run with
 * `maxRetries: 0`): each model call goes down the agent's chain of models (`models`, primary
 * first); on each provider it is retried with jittered backoff honouring `Retry-After`, with
 * key rotation and a circuit breaker per provider. Ours rather than the SDKs' retries because
 * the SDKs differ (Ollama's has none), cannot move to another provider or key, and do not share
 * a breaker between turns; our waits end at once when the turn is aborted or its deadline passes.
 */
import type { ProviderName } from "../../config/index.js";
import { ErrorCode } from "../../protocol/index.js";
import { formatDuration, ProviderError } from "../errors.js";
import type { ModelEvent, ModelProvider, ModelRequest } from "../types.js";
import { backoffMs, sleep, type BackoffPolicy } from "./backoff.js";
import { CircuitBreaker, type BreakerPolicy } from "./breaker.js";
import { classify, type SwitchReason } from "./classify.js";
import { flattenStream, Inline } from "../stream-tap.js";
import { KeyRing } from "./keys.js";

/** One model of an agent's chain. */
export interface ModelRef {
  provider: ProviderName;
  model: string;
}

/** Retry, key and breaker settings of one provider (`[providers.<name>]`). */
export interface ResiliencePolicy extends BackoffPolicy, BreakerPolicy {
  /** Retries of a failed call on the same provider before moving on (429/5xx/unreachable/broken stream). */
  maxRetries: number;
  /** How long a key refused with 401/403 (or a 429 without `Retry-After`) rests, ms. */
  keyCooldownMs: number;
  /** API keys configured (rotated on 429/401); 1 when one or none. */
  keys: number;
}

/** Defaults of {@link ResiliencePolicy} (without `keys`). */
export const DEFAULT_RESILIENCE: Omit<ResiliencePolicy, "keys"> = {
  maxRetries: 2,
  baseMs: 500,
  maxMs: 30_000,
  failures: 5,
  cooldownMs: 30_000,
  keyCooldownMs: 60_000,
};

/**
 * A switch the layer made, for metrics and logs: `retry` (same model again), `key` (another key
 * of the provider), `fallback` (the next model of the chain), `breaker_open` (a provider's
 * breaker opened), `breaker_skip` (a provider skipped because its breaker is open).
 */
export interface SwitchNotice {
  kind: "retry" | "key" | "fallback" | "breaker_open" | "breaker_skip";
  provider: ProviderName;
  reason: SwitchReason;
}

/** Options of {@link ProviderResilience}. */
export interface ProviderResilienceOptions {
  /** The adapter of `name` using its key number `key` (0-based). */
  providers: (name: ProviderName, key?: number) => ModelProvider;
  /** Settings per provider; missing = {@link DEFAULT_RESILIENCE} with one key. */
  policies?: Partial<Record<ProviderName, ResiliencePolicy>>;
  /** Called for every switch; must not throw. */
  onSwitch?: (notice: SwitchNotice) => void;
  /** ms clock (breakers, key cooldowns); default `Date.now`. */
  now?: () => number;
  /** [0, 1) source of the backoff jitter; default `Math.random`. */
  random?: () => number;
}

interface ProviderState {
  policy: ResiliencePolicy;
  breaker: CircuitBreaker;
  keys: KeyRing;
}

/**
 * The shared state (a breaker and a key ring per provider) and the wrapper that gives each
 * agent a {@link ModelProvider} running its chain. One per runtime: every agent's calls to a
 * provider feed the same breaker.
 */
export class ProviderResilience {
  private readonly states = new Map<ProviderName, ProviderState>();

  constructor(private readonly options: ProviderResilienceOptions) {}

  /** The breaker state of `provider` (for tests and status). */
  breakerState(provider: ProviderName): "closed" | "open" | "half_open" {
    return this.state(provider).breaker.state;
  }

  /**
   * A provider running `chain` for each call: the request's own `model` on `chain[0].provider`
   * first, then `chain[1..]`. Its stream yields a `failover` event before an attempt that
   * replaces a failed one when the model changes or the failed attempt had already yielded
   * events (`discard`: everything it yielded since the call began is void).
   * @throws the last attempt's ProviderError when every model failed; a ProviderError -32001
   *   when every provider of the chain was skipped by its open breaker; at once, without
   *   fallback, an error of the request itself (HTTP 400/404/413/422) or the signal's reason
   */
  provider(chain: readonly ModelRef[]): ModelProvider {
    const primary = chain[0]!;
    return {
      name: this.options.providers(primary.provider).name,
      // Flattened: the attempt's events go straight to the consumer, not through the generator.
      stream: (request, signal) => flattenStream(this.stream(chain, request, signal)),
    };
  }

  private state(name: ProviderName): ProviderState {
    let s = this.states.get(name);
    if (!s) {
      const policy = this.options.policies?.[name] ?? { ...DEFAULT_RESILIENCE, keys: 1 };
      s = { policy, breaker: new CircuitBreaker(policy, this.options.now), keys: new KeyRing(policy.keys, this.options.now) };
      this.states.set(name, s);
    }
    return s;
  }

  private notify(notice: SwitchNotice): void {
    try {
      this.options.onSwitch?.(notice);
    } catch {
      // A metrics sink must not break a turn.
    }
  }

  private async *stream(chain: readonly ModelRef[], request: ModelRequest, signal: AbortSignal): AsyncGenerator<ModelEvent | Inline<ModelEvent>> {
    const random = this.options.random ?? Math.random;
    let lastError: unknown;
    /** The failed attempt's model and why, when the next attempt replaces it. */
    let failed: { label: string; reason: SwitchReason } | undefined;
    /** The current attempt yielded events (text, tool calls) a replacement must void. */
    let emitted = false;
    const skipped: string[] = [];
    /** Providers passed over because every key rests (after 429/401) longer than `retry_max_ms`. */
    const resting: { provider: string; ms: number }[] = [];
    for (const [i, ref] of chain.entries()) {
      const entry = i === 0 ? { provider: ref.provider, model: request.model } : ref;
      const label = `${entry.provider}/${entry.model}`;
      const { policy, breaker, keys } = this.state(entry.provider);
      if (!breaker.allow()) {
        skipped.push(entry.provider);
        this.notify({ kind: "breaker_skip", provider: entry.provider, reason: "circuit_open" });
        if (failed === undefined) failed = { label, reason: "circuit_open" };
        continue;
      }
      if (i > 0 && failed !== undefined) this.notify({ kind: "fallback", provider: entry.provider, reason: failed.reason });
      let settled = false;
      try {
        for (let attempt = 1; ; attempt++) {
          const key = keys.pick();
          if (key.readyInMs > policy.maxMs) {
            resting.push({ provider: entry.provider, ms: key.readyInMs });
            break;
          }
          const wait = attempt > 1 ? backoffMs(attempt - 1, policy, key.readyInMs, random) : key.readyInMs;
          if (wait > 0) await sleep(wait, signal);
          if (failed !== undefined && (failed.label !== label || emitted)) {
            yield { type: "failover", from: failed.label, to: label, reason: failed.reason, discard: emitted };
          }
          emitted = false;
          failed = undefined;
          let attemptStream: Inline<ModelEvent> | undefined;
          try {
            // The attempt's events, handed to the consumer by `flattenStream`; its error is thrown here.
            attemptStream = new Inline(
              this.options.providers(entry.provider, key.index).stream(i === 0 ? request : { ...request, model: entry.model }, signal),
            );
            yield attemptStream;
            breaker.success();
            settled = true;
            return;
          } catch (err) {
            emitted = attemptStream?.emitted ?? false;
            if (signal.aborted) throw err;
            const verdict = classify(err);
            if (verdict.action === "fatal") throw err;
            lastError = err;
            failed = { label, reason: verdict.reason };
            if (verdict.action === "next") break;
            if (verdict.action === "rotate") {
              // One key: nothing to rotate to, so it is not rested (the next turn tries it again,
              // e.g. after the operator fixed it); another provider may hold a valid one.
              if (keys.size === 1) break;
              keys.cool(key.index, policy.keyCooldownMs);
              if (attempt >= policy.maxRetries + keys.size) break;
              this.notify({ kind: "key", provider: entry.provider, reason: verdict.reason });
              continue;
            }
            // A rate limit rests the key that met it (for Retry-After, else one backoff step);
            // another key of the provider may take the retry at once.
            if (verdict.reason === "rate_limited") {
              keys.cool(key.index, verdict.retryAfterMs ?? backoffMs(attempt, policy, 0, () => 1));
              if (keys.size > 1) this.notify({ kind: "key", provider: entry.provider, reason: verdict.reason });
            } else if (verdict.retryAfterMs !== undefined) keys.cool(key.index, verdict.retryAfterMs);
            if (breaker.failure()) {
              settled = true;
              this.notify({ kind: "breaker_open", provider: entry.provider, reason: verdict.reason });
              break;
            }
            if (attempt > policy.maxRetries) break;
            this.notify({ kind: "retry", provider: entry.provider, reason: verdict.reason });
          }
        }
      } finally {
        // Left without a verdict on the provider's health (the request's fault, an abort, the
        // consumer stopped reading): a half-open probe slot is freed for the next caller.
        if (!settled) breaker.neutral();
      }
    }
    if (lastError !== undefined) throw lastError;
    const why: string[] = [];
    if (skipped.length > 0)
      why.push(
        `${skipped.join(", ")} skipped (circuit breaker open after repeated failures; ` +
          `next probe within ${formatDuration(Math.max(...skipped.map((p) => this.state(p as ProviderName).policy.cooldownMs)))})`,
      );
    for (const r of resting) why.push(`${r.provider}: every key rests for another ${formatDuration(r.ms)} after a rate limit or refusal`);
    throw new ProviderError(ErrorCode.ProviderUnavailable, `no model provider available: ${why.join("; ")}`);
  }
}
