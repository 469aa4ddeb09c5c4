import type { Logger } from "pino";
import { errorMessage } from "../util/index.js";

/** What {@link CloseStack.close} reports; both lists are in close order. */
export interface CloseReport {
  /** Steps whose close threw or rejected (each was logged at error). */
  failed: string[];
  /**
   * Steps not finished when `close` resolved because its deadline passed: the step that was still
   * running then, and every later step (each was started, not awaited: the caller is about to
   * exit). Empty when the stack closed within its deadline.
   */
  unfinished: string[];
}

/** Options of {@link CloseStack}. */
export interface CloseStackOptions {
  /** Gets a failing or late step (error, with `step`) and each step's time (debug, `step`, `ms`). */
  logger: Pick<Logger, "error" | "debug">;
}

/** One registered close. */
interface Step {
  name: string;
  close: () => unknown;
}

/**
 * A stack of close functions: whatever opens something registers how to close it
 * ({@link defer}), and {@link close} runs them last-registered first. Every path that ends a
 * component (a failed start-up, a stop, a broken store) releases the same things in the same
 * order, and one step that throws or hangs does not keep the others from running.
 */
export class CloseStack {
  private readonly steps: Step[] = [];
  private closed: Promise<CloseReport> | undefined;

  constructor(private readonly options: CloseStackOptions) {}

  /** True once {@link close} was called. */
  get closing(): boolean {
    return this.closed !== undefined;
  }

  /**
   * Registers `close` to run before everything registered earlier. It may return a promise
   * (awaited) or anything else; a throw or rejection is logged and does not stop the others.
   * @param name names the step in logs and in the {@link CloseReport}
   * @throws Error when the stack is already closing (what registers then would never be closed)
   */
  defer(name: string, close: () => unknown): void {
    if (this.closed !== undefined) throw new Error(`cannot register "${name}": the stack is already closing`);
    this.steps.push({ name, close });
  }

  /**
   * Runs every registered close in reverse order, one at a time. Idempotent: later calls get the
   * first call's promise (and its deadline). Never rejects.
   * @param options.deadlineMs the whole close's budget from this call, ms; a step still running
   *   then is left running, the remaining ones are started without waiting, and the report lists
   *   them in `unfinished`. Absent = no deadline.
   */
  close(options: { deadlineMs?: number } = {}): Promise<CloseReport> {
    return (this.closed ??= this.run(options.deadlineMs));
  }

  private async run(deadlineMs: number | undefined): Promise<CloseReport> {
    const { logger } = this.options;
    const endsAt = deadlineMs === undefined ? Infinity : performance.now() + deadlineMs;
    const report: CloseReport = { failed: [], unfinished: [] };
    const steps = this.steps.splice(0).reverse();
    for (const step of steps) {
      const started = performance.now();
      // A failure is logged whenever it happens, also after the deadline left the step behind.
      const running = invoke(step).then(
        () => true,
        (err: unknown) => {
          logger.error({ step: step.name, error: errorMessage(err) }, `closing ${step.name} failed`);
          return false;
        },
      );
      if (report.unfinished.length > 0) {
        // Past the deadline: give each later step its start (worker terminations, file closes
        // are issued synchronously), but do not wait.
        report.unfinished.push(step.name);
        continue;
      }
      const ok = await within(running, endsAt - started);
      if (ok === undefined) {
        logger.error({ step: step.name, deadlineMs }, `closing ${step.name} did not finish by the deadline; the remaining steps are started without waiting`);
        report.unfinished.push(step.name);
        continue;
      }
      if (!ok) report.failed.push(step.name);
      logger.debug({ step: step.name, ms: Math.round(performance.now() - started) }, "closed");
    }
    return report;
  }
}

/** Calls a step's close, turning a synchronous throw into a rejection. */
function invoke(step: Step): Promise<unknown> {
  try {
    return Promise.resolve(step.close());
  } catch (err) {
    return Promise.reject(err);
  }
}

/** Resolves with `promise`'s value, or with undefined once `ms` passed (never rejects if `promise` does not). */
function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  if (ms === Infinity) return promise;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), Math.max(0, ms))));
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}
