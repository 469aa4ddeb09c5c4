// TEMPORARY: a `SandboxPool` running Extism instances on the main thread, so the registry can be
// written against the sandbox contract (sandbox/types.ts) before the worker sandbox lands.
// It enforces the instance cap, the queue cap and the output cap; it cannot enforce timeouts or
// memory limits (a main-thread call cannot be interrupted) and provides no `exoclaw:host/v1`
// functions (a plugin importing them fails to start: deny by default). Delete it once
// `sandbox/index.ts` exports `createSandboxPool` (see pool-factory.ts).
import createPlugin, { type CallContext, type Plugin } from "@extism/extism";
import type { CallFailureKind, CallOutcome, SandboxPool, SandboxPoolOptions, SandboxStats } from "./sandbox/types.js";
import type { PluginLogger } from "./types.js";
import { wasmApi, type WasmModule } from "./wasm.js";

const EXTISM_ENV = "extism:host/env";
const EXTISM_MAX_PAGES = 1024;
const EXTISM_MAX_VAR_BYTES = 1 << 20;
/** Durations kept for p50/p99. */
const WINDOW = 512;

interface Instance {
  plugin: Plugin;
  /** Last message the guest passed to `error_set` during the current call. */
  lastError: string | null;
}

interface Waiter {
  resolve(inst: Instance): void;
  reject(err: unknown): void;
}

class ClosedError extends Error {}
class BusyError extends Error {}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

async function instantiate(name: string, module: WasmModule, logger: PluginLogger): Promise<Instance> {
  const forward =
    (level: string) =>
    (...args: unknown[]): void =>
      logger.debug({ plugin: name, level }, args.map((a) => (typeof a === "string" ? a : String(a))).join(" "));
  const extismLogger = {
    trace: forward("trace"),
    debug: forward("debug"),
    info: forward("info"),
    warn: forward("warn"),
    error: forward("error"),
  } as unknown as Console;
  const wantLogs = logger.isLevelEnabled ? logger.isLevelEnabled("debug") : true;
  const inst: Instance = { plugin: undefined as unknown as Plugin, lastError: null };
  inst.plugin = await createPlugin(
    { wasm: [{ module, name: "main" }] },
    {
      useWasi: false,
      runInWorker: false,
      allowedHosts: [],
      allowedPaths: {},
      config: {},
      memory: { maxPages: EXTISM_MAX_PAGES, maxVarBytes: EXTISM_MAX_VAR_BYTES },
      logger: extismLogger,
      logLevel: wantLogs ? "trace" : "silent",
      fetch: (async () => {
        throw new Error("network access is not granted to plugins");
      }) as typeof fetch,
      functions: {
        [EXTISM_ENV]: {
          error_set: (ctx: CallContext, handle: bigint) => {
            const text = ctx.read(handle)?.text() ?? "(unreadable error message)";
            inst.lastError = text;
            ctx.setError(text);
          },
        },
      },
    },
  );
  return inst;
}

/**
 * A main-thread `SandboxPool` (temporary; see the file header). Instances are created lazily
 * on the first calls, up to `limits.maxInFlight`; at most `limits.maxQueued` calls wait.
 */
export function createMainThreadPool(options: SandboxPoolOptions): SandboxPool {
  const { name, limits, logger } = options;
  const idle: Instance[] = [];
  const live = new Set<Instance>();
  const waiters: Waiter[] = [];
  let creating = 0;
  let closed = false;
  let calls = 0;
  const failures: Partial<Record<CallFailureKind, number>> = {};
  const durations: number[] = [];
  let module: Promise<WasmModule> | null = null;
  let running = 0;
  let drained: (() => void) | null = null;

  const compile = (): Promise<WasmModule> => (module ??= wasmApi.compile(options.wasm));

  async function spawn(): Promise<Instance> {
    creating++;
    try {
      const inst = await instantiate(name, await compile(), logger);
      if (closed) {
        await inst.plugin.close().catch(() => {});
        throw new ClosedError();
      }
      live.add(inst);
      return inst;
    } finally {
      creating--;
    }
  }

  function acquire(signal?: AbortSignal): Promise<Instance> {
    if (closed) return Promise.reject(new ClosedError());
    const ready = idle.pop();
    if (ready !== undefined) return Promise.resolve(ready);
    if (live.size + creating < limits.maxInFlight) return spawn();
    if (waiters.length >= limits.maxQueued) return Promise.reject(new BusyError());
    return new Promise<Instance>((resolve, reject) => {
      const onAbort = (): void => {
        const i = waiters.indexOf(waiter);
        if (i >= 0) waiters.splice(i, 1);
        reject(signal?.reason);
      };
      const waiter: Waiter = {
        resolve: (inst) => {
          signal?.removeEventListener("abort", onAbort);
          resolve(inst);
        },
        reject: (err) => {
          signal?.removeEventListener("abort", onAbort);
          reject(err);
        },
      };
      waiters.push(waiter);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  function release(inst: Instance): void {
    if (closed) {
      live.delete(inst);
      void inst.plugin.close().catch(() => {});
      return;
    }
    const waiter = waiters.shift();
    if (waiter !== undefined) waiter.resolve(inst);
    else idle.push(inst);
  }

  function discard(inst: Instance): void {
    live.delete(inst);
    void inst.plugin.close().catch(() => {});
    if (closed || waiters.length === 0) return;
    spawn().then(release, (err: unknown) => waiters.shift()?.reject(err));
  }

  function finish(outcome: CallOutcome): CallOutcome {
    if (!outcome.ok) failures[outcome.kind] = (failures[outcome.kind] ?? 0) + 1;
    durations.push(outcome.durationMs);
    if (durations.length > WINDOW) durations.shift();
    return outcome;
  }

  const fail = (kind: CallFailureKind, message: string, started: number): CallOutcome =>
    finish({ ok: false, kind, message, durationMs: performance.now() - started });

  async function call(fn: string, input: Uint8Array, signal?: AbortSignal): Promise<CallOutcome> {
    const started = performance.now();
    calls++;
    let inst: Instance;
    try {
      inst = await acquire(signal);
    } catch (err) {
      if (err instanceof ClosedError) return fail("closed", `plugin '${name}' is closed`, started);
      if (err instanceof BusyError) {
        return fail("busy", `${limits.maxInFlight} calls running and ${limits.maxQueued} waiting`, started);
      }
      if (signal?.aborted) return fail("closed", `aborted: ${errorMessage(signal.reason)}`, started);
      return fail("trap", `could not start: ${errorMessage(err)}`, started);
    }
    running++;
    inst.lastError = null;
    try {
      const output = await inst.plugin.call(fn, input);
      release(inst);
      const bytes = output === null ? new Uint8Array(0) : output.bytes();
      if (bytes.length > limits.maxOutputBytes) {
        return fail("output_too_large", `output of ${bytes.length} bytes is over the limit of ${limits.maxOutputBytes}`, started);
      }
      return finish({ ok: true, output: bytes, durationMs: performance.now() - started });
    } catch (err) {
      const message = errorMessage(err);
      if (message.startsWith("Plugin-originated error:") && !(err instanceof wasmApi.RuntimeError)) {
        release(inst);
        return fail("plugin_error", inst.lastError ?? message, started);
      }
      discard(inst);
      return fail("trap", inst.lastError === null ? message : `${inst.lastError} (${message})`, started);
    } finally {
      running--;
      if (running === 0 && drained !== null) drained();
    }
  }

  function percentile(p: number): number {
    if (durations.length === 0) return 0;
    const sorted = [...durations].sort((a, b) => a - b);
    return +sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!.toFixed(3);
  }

  return {
    call,
    stats(): SandboxStats {
      return {
        instances: live.size,
        busy: live.size - idle.length,
        queued: waiters.length,
        calls,
        failures: { ...failures },
        p50Ms: percentile(50),
        p99Ms: percentile(99),
      };
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      for (const w of waiters.splice(0)) w.reject(new ClosedError());
      if (running > 0) await new Promise<void>((resolve) => (drained = resolve));
      const all = [...live];
      live.clear();
      idle.length = 0;
      await Promise.all(all.map((i) => i.plugin.close().catch(() => {})));
    },
  };
}
