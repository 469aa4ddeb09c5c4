/**
 * Metering: model prices and the cost of one model call from the provider's reported usage.
 * Pure (no I/O); a {@link PriceTable} caches its lookups.
 */
import type { ModelPrice } from "../../config/index.js";

/**
 * Shipped prices, USD per million tokens, by `"<provider>/<model>"` (a model id also matches a
 * key that is its prefix ending at a `-`, so `claude-sonnet-4-6-20260101` is priced as
 * `claude-sonnet-4-6`). `cacheWrite` is the 5-minute cache write rate.
 *
 * Sources, as published on the vendors' pricing pages (checked 2026-12-04 through stored copies;
 * verify before relying on them, and override in `[pricing]`):
 * - Anthropic: platform.claude.com/docs/about-claude/pricing (Claude 4.x table) and the Claude 5
 *   model pages (Sonnet 5.5 cache reads $0.10 since 2026-10-07; Haiku 5.5 at its <= 100K-prompt rate).
 * - OpenAI: openai.com/api/pricing (GPT-5.4/5.5 family, standard rates under 270K context;
 *   `cacheRead` is "cached input").
 * - Google: ai.google.dev/gemini-api/docs/pricing (Gemini 2.5, prompts <= 200K tokens).
 * - Ollama: local models cost nothing (`ollama/*`).
 */
export const DEFAULT_PRICES: Readonly<Record<string, ModelPrice>> = {
  "anthropic/claude-opus-5-5": { input: 4, output: 20, cacheRead: 0.2, cacheWrite: 5 },
  "anthropic/claude-opus-5": { input: 5, output: 25, cacheRead: 0.5, cacheWrite: 6.25 },
  "anthropic/claude-sonnet-5-5": { input: 2, output: 10, cacheRead: 0.1, cacheWrite: 2.5 },
  "anthropic/claude-sonnet-5": { input: 2, output: 10, cacheRead: 0.2, cacheWrite: 2.5 },
  "anthropic/claude-haiku-5-5": { input: 0.1, output: 0.5, cacheRead: 0.01, cacheWrite: 0.125 },
  "anthropic/claude-opus-4-7": { input: 5, output: 25, cacheRead: 0.5, cacheWrite: 6.25 },
  "anthropic/claude-opus-4-6": { input: 5, output: 25, cacheRead: 0.5, cacheWrite: 6.25 },
  "anthropic/claude-opus-4-5": { input: 5, output: 25, cacheRead: 0.5, cacheWrite: 6.25 },
  "anthropic/claude-opus-4-1": { input: 15, output: 75, cacheRead: 1.5, cacheWrite: 18.75 },
  "anthropic/claude-opus-4": { input: 15, output: 75, cacheRead: 1.5, cacheWrite: 18.75 },
  "anthropic/claude-sonnet-4-6": { input: 3, output: 15, cacheRead: 0.3, cacheWrite: 3.75 },
  "anthropic/claude-sonnet-4-5": { input: 3, output: 15, cacheRead: 0.3, cacheWrite: 3.75 },
  "anthropic/claude-sonnet-4": { input: 3, output: 15, cacheRead: 0.3, cacheWrite: 3.75 },
  "anthropic/claude-haiku-4-5": { input: 1, output: 5, cacheRead: 0.1, cacheWrite: 1.25 },
  "anthropic/claude-3-5-haiku": { input: 0.8, output: 4, cacheRead: 0.08, cacheWrite: 1 },
  "openai/gpt-5.5": { input: 5, output: 30, cacheRead: 0.5 },
  "openai/gpt-5.4": { input: 2.5, output: 15, cacheRead: 0.25 },
  "openai/gpt-5.4-mini": { input: 0.75, output: 4.5, cacheRead: 0.075 },
  "openai/gpt-5.4-nano": { input: 0.2, output: 1.25, cacheRead: 0.02 },
  "openai/gpt-5.2": { input: 1.75, output: 14, cacheRead: 0.175 },
  "openai/gpt-5.1": { input: 1.25, output: 10, cacheRead: 0.125 },
  "openai/gpt-5": { input: 1.25, output: 10, cacheRead: 0.125 },
  "openai/gpt-4.1": { input: 2, output: 8, cacheRead: 0.5 },
  "openai/gpt-4o": { input: 2.5, output: 10, cacheRead: 1.25 },
  "openai/gpt-4o-mini": { input: 0.15, output: 0.6, cacheRead: 0.075 },
  "gemini/gemini-2.5-pro": { input: 1.25, output: 10, cacheRead: 0.125 },
  "gemini/gemini-2.5-flash": { input: 0.3, output: 2.5, cacheRead: 0.03 },
  "gemini/gemini-2.5-flash-lite": { input: 0.1, output: 0.4, cacheRead: 0.01 },
};

/** Tokens of one model call as the provider reported them. Cache tokens are input tokens billed at cache rates, not counted in `inputTokens`. */
export interface CallUsage {
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens?: number;
  cacheWriteTokens?: number;
}

/** Total tokens of a call: input + output + cache read + cache write (what token budgets count). */
export function totalTokens(u: CallUsage): number {
  return u.inputTokens + u.outputTokens + (u.cacheReadTokens ?? 0) + (u.cacheWriteTokens ?? 0);
}

/** Cost of one call in USD at `price` (USD per million tokens); cache rates default to the input rate. */
export function costUsd(price: ModelPrice, u: CallUsage): number {
  const micro =
    u.inputTokens * price.input +
    u.outputTokens * price.output +
    (u.cacheReadTokens ?? 0) * (price.cacheRead ?? price.input) +
    (u.cacheWriteTokens ?? 0) * (price.cacheWrite ?? price.input);
  return micro / 1_000_000;
}

/**
 * Prices by provider and model: `[pricing]` overrides over {@link DEFAULT_PRICES}; `ollama/*`
 * is free unless overridden. Lookups are cached per `provider/model`.
 */
export class PriceTable {
  private readonly table: Map<string, ModelPrice>;
  private readonly cache = new Map<string, ModelPrice | null>();

  /** @param overrides `[pricing]` entries by `"<provider>/<model>"` (they win over the shipped ones) */
  constructor(overrides: Readonly<Record<string, ModelPrice>> = {}) {
    this.table = new Map(Object.entries({ ...DEFAULT_PRICES, ...overrides }));
  }

  /**
   * The price of `model` on `provider`: the exact `provider/model` entry, else the longest entry
   * that is a prefix of it ending where the id continues with `-` (a dated or suffixed id), else
   * free for `ollama`, else undefined (unknown: cost cannot be computed).
   */
  priceOf(provider: string, model: string): ModelPrice | undefined {
    const key = `${provider}/${model}`;
    let hit = this.cache.get(key);
    if (hit === undefined) {
      hit = this.table.get(key) ?? null;
      if (hit === null) {
        let best = "";
        for (const [k, p] of this.table) {
          if (k.length > best.length && key.startsWith(k) && key[k.length] === "-") {
            best = k;
            hit = p;
          }
        }
      }
      if (hit === null && provider === "ollama") hit = { input: 0, output: 0 };
      this.cache.set(key, hit);
    }
    return hit ?? undefined;
  }
}
