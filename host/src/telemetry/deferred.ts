/**
 * Metrics that load after start-up: prom-client, its default collectors and the node built-ins it
 * requires (http, https, zlib, perf_hooks, v8) cost the gateway's start-up ~20-30 ms of main-thread
 * time on the 2-core machine, and `/health` promises nothing about metrics (docs/operations.md,
 * "Start-up time and what ready means"). So the gateway hands its parts a recorder at once and
 * loads the real metrics (`PromMetrics`) just after it is ready, or at the first scrape if that
 * comes first. Calls made before the load are queued in order and replayed into the loaded
 * metrics, so no turn, plugin call or connection is missed.
 */
import type { PromMetrics } from "./prometheus.js";

/** What the gateway calls on its metrics: every public method of {@link PromMetrics}. */
export type MetricsRecorder = Omit<PromMetrics, "registry">;

/**
 * Calls queued before the metrics loaded, at most; later ones are dropped (counted in
 * {@link DeferredMetrics.dropped}). Start-up plus the load delay sees a handful.
 */
export const DEFERRED_QUEUE_LIMIT = 10_000;

/** A {@link MetricsRecorder} now, the real metrics once {@link DeferredMetrics.load} resolves. */
export interface DeferredMetrics {
  /** Records into the loaded metrics, or queues until they load; `scrape()` loads them first. */
  readonly recorder: MetricsRecorder;
  /**
   * Loads the metrics (once; later calls get the same promise) and replays the queued calls.
   * @throws whatever the loader throws (the recorder keeps queuing nothing more: calls are dropped)
   */
  load(): Promise<PromMetrics>;
  /** Calls dropped: beyond {@link DEFERRED_QUEUE_LIMIT} before the load, or after a failed load. */
  readonly dropped: number;
}

type Method = Exclude<keyof MetricsRecorder, "scrape">;

/**
 * Creates the deferred metrics; nothing is loaded until `load()` or the first `scrape()`.
 * @param loader loads prom-client and builds the metrics (`loadPrometheus().then((m) => new m.PromMetrics())`)
 */
export function deferMetrics(loader: () => Promise<PromMetrics>): DeferredMetrics {
  let real: PromMetrics | undefined;
  let failed = false;
  let loading: Promise<PromMetrics> | undefined;
  let dropped = 0;
  const queue: Array<[Method, unknown[]]> = [];
  const load = (): Promise<PromMetrics> =>
    (loading ??= loader().then(
      (m) => {
        for (const [name, args] of queue.splice(0)) (m[name] as (...a: unknown[]) => void)(...args);
        real = m;
        return m;
      },
      (err: unknown) => {
        failed = true;
        dropped += queue.splice(0).length;
        throw err;
      },
    ));
  const call =
    (name: Method) =>
    (...args: unknown[]): void => {
      if (real !== undefined) return void (real[name] as (...a: unknown[]) => void)(...args);
      if (failed || queue.length >= DEFERRED_QUEUE_LIMIT) dropped++;
      else queue.push([name, args]);
    };
  const scrape = () => load().then((m) => m.scrape());
  const methods = new Map<string, (...args: unknown[]) => void>();
  const recorder = new Proxy({} as MetricsRecorder, {
    get(_target, name) {
      if (name === "scrape") return scrape;
      // Not a thenable: `await recorder` must not call into the queue.
      if (typeof name !== "string" || name === "then") return undefined;
      let fn = methods.get(name);
      if (fn === undefined) methods.set(name, (fn = call(name as Method)));
      return fn;
    },
  });
  return {
    recorder,
    load,
    get dropped() {
      return dropped;
    },
  };
}
