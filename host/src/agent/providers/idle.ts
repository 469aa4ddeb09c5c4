import { DEFAULT_IDLE_TIMEOUT_MS } from "../../config/index.js";
import { ProviderStallError } from "../errors.js";

/** Idle timeout of a model call when neither the agent nor the provider sets one, ms. */
export { DEFAULT_IDLE_TIMEOUT_MS };

/** Options of {@link IdleWatch}. */
export interface IdleWatchOptions {
  /** Provider name, for the error message. */
  provider: string;
  /** Longest silence allowed: from sending the request to the first event, and between events, ms. */
  idleTimeoutMs: number;
  /** The caller's signal (the turn's): its abort is passed on, with its reason. */
  signal: AbortSignal;
}

/**
 * The idle timeout of one streaming model call. The SDKs' own `timeout` stops at the response
 * headers, so a stream that stalls after them would hang the turn until the turn deadline; this
 * watch ends it after `idleTimeoutMs` without a stream event.
 *
 * Use: hand {@link signal} to the SDK call instead of the caller's signal, call {@link touch} on
 * every event the SDK yields, and in the adapter's `catch` throw {@link stopped}`()` when it is
 * defined (before mapping the error: an aborted SDK call throws, or returns early, with
 * something unrelated). Always {@link dispose} in `finally` (with `cancel` unless the stream ended).
 */
export class IdleWatch {
  /** Aborted when the caller's signal aborts (same reason) or the idle timeout passes (a {@link ProviderStallError}). */
  readonly signal: AbortSignal;
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout;
  private readonly forward: () => void;
  private stall: ProviderStallError | undefined;

  constructor(private readonly options: IdleWatchOptions) {
    this.signal = this.controller.signal;
    this.forward = () => this.controller.abort(options.signal.reason);
    if (options.signal.aborted) this.forward();
    else options.signal.addEventListener("abort", this.forward, { once: true });
    this.timer = setTimeout(() => {
      this.stall = new ProviderStallError(options.provider, options.idleTimeoutMs);
      this.controller.abort(this.stall);
    }, options.idleTimeoutMs);
  }

  /** An event arrived: the silence starts again from now. */
  touch(): void {
    if (!this.controller.signal.aborted) this.timer.refresh();
  }

  /**
   * Why the call was stopped from outside, if it was: the caller's abort reason, or the
   * {@link ProviderStallError} of the idle timeout. Undefined when neither happened (the error
   * in hand is the provider's own).
   */
  stopped(): unknown {
    if (this.options.signal.aborted) return this.options.signal.reason;
    return this.stall;
  }

  /**
   * Stops the timer and detaches from the caller's signal. With `cancel` (the call ends before
   * its stream did: the consumer stopped early, or the adapter failed), also aborts
   * {@link signal}, so that the SDK's HTTP request is cancelled: the `@google/genai` and `ollama`
   * streams do not cancel it when their iterator is closed, and a stalled one would otherwise
   * stay open with no idle timeout left to end it.
   */
  dispose(cancel = false): void {
    clearTimeout(this.timer);
    this.options.signal.removeEventListener("abort", this.forward);
    if (cancel && !this.controller.signal.aborted)
      this.controller.abort(new Error(`provider ${this.options.provider}: the call was closed before its stream ended`));
  }
}
