import { setImmediate as yieldToEvents } from "node:timers/promises";
import type { Config, ProviderName } from "../../config/index.js";
import { loadDispatcherFetch } from "./dispatcher-fetch.js";

/**
 * The SDK package each provider adapter imports at its first call (anthropic.ts, openai.ts,
 * gemini.ts, ollama.ts; memory/embeddings.ts for embeddings), as the same `import()` call, so
 * that a warmed package is the one the adapter gets (one evaluation per process: the installed
 * `exoclaw` serves these from dist/providers/, bin/exoclaw.js).
 */
const SDK: Record<ProviderName, () => Promise<unknown>> = {
  anthropic: () => import("@anthropic-ai/sdk"),
  openai: () => import("openai"),
  gemini: () => import("@google/genai"),
  ollama: () => import("ollama"),
};

/** Providers whose adapter sends its model calls through undici (dispatcher-fetch.ts). */
const ON_UNDICI: ReadonlySet<ProviderName> = new Set(["anthropic", "openai"]);

/**
 * The providers a configuration calls: every agent's models (primary and fallbacks) and its
 * memory embeddings, in that order, each once.
 */
export function providersInUse(config: Pick<Config, "agents">): ProviderName[] {
  const names = new Set<ProviderName>();
  for (const a of config.agents) {
    names.add(a.provider);
    for (const m of a.models ?? []) names.add(m.provider);
  }
  for (const a of config.agents) if (a.memory?.embeddings) names.add(a.memory.embeddings.provider);
  return [...names];
}

/**
 * Loads the SDK packages of `names` (and undici, the HTTP client of the Anthropic and OpenAI
 * adapters) ahead of the first model call, which would otherwise load them itself: ~370 ms for
 * `@anthropic-ai/sdk` and undici as ES modules from node_modules on the 2-core VM, ~100-150 ms
 * from the code-cached bundles of dist/providers/ at load ~4 (about a third of it Node's own
 * `node:http2` and WHATWG fetch classes, which undici loads). In steps, back to the event loop
 * between two (`setImmediate`; bin/exoclaw.js also yields between a bundle's compile and its
 * evaluation), so that a request arriving meanwhile (a `/health` poll, the first `chat.send`)
 * waits for one step at most; a `chat.send` that needs a package being loaded waits for that same
 * load (import() is evaluated once), never for a second one.
 *
 * Never rejects: a package that fails to load is reported to `onError` and left to the model
 * call, which reports it as it always did.
 * @param names providers to warm, in order ({@link providersInUse})
 */
export async function warmProviders(names: readonly ProviderName[], options: WarmOptions): Promise<void> {
  const steps: [ProviderName, () => unknown][] = [];
  const onUndici = names.find((n) => ON_UNDICI.has(n));
  if (onUndici !== undefined) {
    // Two Node built-ins undici's evaluation loads, each its own step (~28 and ~17 ms on the VM):
    // the WHATWG fetch classes (undici reads `globalThis.Headers`; the responses of
    // dispatcher-fetch.ts are `Headers` too) and `node:http2` (its HTTP/2 client).
    steps.push([onUndici, () => globalThis.Headers], [onUndici, () => import("node:http2")], [onUndici, loadDispatcherFetch]);
  }
  for (const name of names) steps.push([name, SDK[name]]);
  for (const [name, step] of steps) {
    await yieldToEvents();
    if (options.beforeStep !== undefined && !(await options.beforeStep())) return;
    try {
      await step();
    } catch (err) {
      options.onError(name, err);
    }
  }
}

/** Options of {@link warmProviders}. */
export interface WarmOptions {
  /** Called with the provider whose package failed to load and the error (a debug log line). */
  onError: (provider: ProviderName, err: unknown) => void;
  /** Awaited before each step (it may pause the warm-up); false ends the warm-up there. */
  beforeStep?: () => Promise<boolean>;
}

/**
 * A background warm-up that runs once: `start()` (any number of calls, from any trigger) begins
 * {@link warmProviders} on the next turn of the event loop, after whatever the caller is writing
 * (a `/health` answer); `stop()` ends it at its next step and resolves when it has.
 */
export interface ProviderWarmUp {
  /** Begins the warm-up unless it already began or was stopped. Never throws. */
  start(): void;
  /** Ends a warm-up under way at its next step; resolves once it ended (at once if none began). */
  stop(): Promise<void>;
}

/**
 * The gateway's warm-up of the providers a configuration calls ({@link providersInUse}, read
 * when it starts, so a reload before then is seen).
 * @param names the providers to warm, asked for when the warm-up begins
 * @param onError as in {@link WarmOptions}
 */
export function providerWarmUp(names: () => readonly ProviderName[], onError: WarmOptions["onError"]): ProviderWarmUp {
  let scheduled = false;
  let stopped = false;
  let running: Promise<void> | undefined;
  const begin = (): void => {
    if (!stopped) running = warmProviders(names(), { onError, beforeStep: async () => !stopped });
  };
  return {
    start() {
      if (scheduled || stopped) return;
      scheduled = true;
      setImmediate(begin);
    },
    async stop() {
      stopped = true;
      await running;
    },
  };
}
