// A pool of sandboxed instances of one plugin: each instance is an Extism plugin running in its
// own worker thread (sandbox-worker.mjs), so the gateway's event loop never runs guest code.
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from "node:worker_threads";
import type { EffectiveGrant, PluginLimits } from "../capabilities.js";
import { errorMessage, percentile } from "../../util/index.js";
import type { PluginLogger } from "../types.js";
import { wasmApi, type WasmModule } from "../wasm.js";
import { KvError, openKvStore, releaseKvStore, type KvStore } from "./kv.js";
import { prepareModule, type PreparedModule } from "./module.js";
import {
  CTL_EFFECTS,
  CTL_EXEC_US,
  CTL_FN_LEN,
  CTL_HOST_REPLY,
  CTL_IN_LEN,
  CTL_IN_MODE,
  CTL_OUT_LEN,
  CTL_OUT_MODE,
  CTL_REQ,
  CTL_RESP,
  CTL_SLOTS,
  CTL_STATUS,
  CTL_TIMEOUT_MS,
  DATA_BYTES,
  DATA_OFFSET,
  MAIN_SPIN_MS,
  SPIN_COOLDOWN,
  SPIN_MISSES,
  ST_MEMORY,
  ST_OK,
  ST_OUTPUT_TOO_LARGE,
  ST_PLUGIN_ERROR,
  ST_START_FAILED,
  ST_TIMEOUT,
  ST_TRAP,
  type ConnectionEffect,
  type HostReply,
  type HostRequest,
  type WorkerToMain,
} from "./protocol.mjs";
import { HostHttpError, HostSecretError, hmacVerify, redactSecrets, secretEquals, substituteSecrets } from "./services.js";
import type { CallFailureKind, CallOutcome, SandboxPool, SandboxPoolOptions, SandboxStats } from "./types.js";

/**
 * The worker script. From the sources it is the file next to this one; in the esbuild bundle
 * (dist/exoclaw.cjs) `import.meta.url` is the bundle, and scripts/bundle-host.mjs writes the
 * worker as dist/sandbox-worker.mjs next to it, so the same relative URL works in both.
 */
export const SANDBOX_WORKER_URL = new URL("./sandbox-worker.mjs", import.meta.url);

/** V8 heap limits of one sandbox worker, MiB. Guest linear memory is outside the V8 heap. */
const WORKER_RESOURCE_LIMITS = { maxOldGenerationSizeMb: 64, maxYoungGenerationSizeMb: 16, stackSizeMb: 4 };
const DEFAULT_IDLE_TIMEOUT_MS = 60_000;

/** `Atomics.waitAsync` (ES2024; the project's lib is ES2023). */
const waitAsync = (
  Atomics as unknown as {
    waitAsync(
      array: Int32Array,
      index: number,
      value: number,
      timeoutMs?: number,
    ): { async: false; value: "not-equal" | "timed-out" } | { async: true; value: Promise<"ok" | "timed-out"> };
  }
).waitAsync;
const DURATION_SAMPLES = 1024;

/** One worker and its shared control block. */
interface Slot {
  worker: Worker;
  ctl: Int32Array;
  /** The data area as bytes (copies out of it with `slice`). */
  bytes: Uint8Array;
  /** The data area as a Buffer (UTF-8 decoding). */
  text: Buffer;
  /** main -> worker messages (large inputs, host replies), read synchronously by the worker. */
  down: MessagePort;
  /** worker -> main large outputs, read synchronously here. */
  up: MessagePort;
  seq: number;
  busy: boolean;
  dead: boolean;
  idleSince: number;
  /** Set (then RESP notified) to end the running call early: abort, worker death. */
  interrupt: { kind: CallFailureKind; message: string } | null;
  /** Aborts the main-thread work (HTTP) of this worker's host calls when it is stopped. */
  hostAbort: AbortController;
  /** The worker's last 'error' event. */
  error: Error | null;
}

type Failure = { ok: false; kind: CallFailureKind; message: string };

// A call that finishes within the main-thread spin completes without yielding to the event
// loop; a caller looping over such calls would starve timers and I/O. So after this many
// consecutive such completions (across all pools) a call waits for the next macrotask.
const MAX_SYNC_COMPLETIONS = 32;
let syncCompletions = 0;
let syncResetScheduled = false;

function resetSyncCompletions(): void {
  syncCompletions = 0;
  syncResetScheduled = false;
}

/** Counts a call that completed without yielding; resolves at once, or after a macrotask turn. */
function yieldIfStarving(): Promise<void> | null {
  syncCompletions++;
  if (!syncResetScheduled) {
    syncResetScheduled = true;
    setImmediate(resetSyncCompletions);
  }
  return syncCompletions > MAX_SYNC_COMPLETIONS ? new Promise((resolve) => setImmediate(resolve)) : null;
}
type Waiter = (got: Slot | Failure) => void;

/**
 * The grant as the worker sees it: everything but the secret values, plus the granted secret
 * names (so that hmac_verify / secret_equals can refuse an ungranted name without a round trip).
 */
function workerGrant(grant: EffectiveGrant): Omit<EffectiveGrant, "secrets"> & { secretNames?: string[] } {
  const { secrets, ...rest } = grant;
  return secrets === undefined ? rest : { ...rest, secretNames: Object.keys(secrets) };
}

class Pool implements SandboxPool {
  private readonly name: string;
  private readonly prepared: PreparedModule;
  private readonly grant: EffectiveGrant;
  private readonly limits: PluginLimits;
  private readonly options: SandboxPoolOptions;
  private readonly logger: PluginLogger;
  private readonly onRestart: ((reason: CallFailureKind) => void) | undefined;
  private readonly idleTimeoutMs: number;
  private compiled: Promise<WasmModule> | null = null;
  private readonly slots = new Set<Slot>();
  private readonly idle: Slot[] = [];
  private starting = 0;
  private readonly waiters: Waiter[] = [];
  private readonly kv: KvStore | null;
  private closed = false;
  private closing: Promise<void> | null = null;
  private readonly running = new Set<Promise<CallOutcome>>();
  private reaper: NodeJS.Timeout | null = null;
  private readonly fnNames = new Map<string, Buffer>();
  private calls = 0;
  private readonly failures: Partial<Record<CallFailureKind, number>> = {};
  private readonly durations = new Float64Array(DURATION_SAMPLES);
  private durationCount = 0;
  private readonly debugLogs: boolean;
  /** Moving average of the worker-side execution time of calls, ms (decides the main-thread spin). */
  private execAvgMs = 0;
  /** Fruitless main-thread polls in a row, and calls left without polling (see protocol.mjs). */
  private spinMisses = 0;
  private spinCooldown = 0;

  constructor(options: SandboxPoolOptions) {
    this.options = options;
    this.name = options.name;
    this.grant = options.grant;
    this.limits = options.limits;
    this.logger = options.logger;
    this.onRestart = options.onRestart;
    this.idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    this.prepared = prepareModule(options.wasm, options.limits.memoryBytes);
    this.kv = options.grant.kv !== undefined ? openKvStore(options.stateDir) : null;
    this.debugLogs = this.logger.isLevelEnabled ? this.logger.isLevelEnabled("debug") : true;
  }

  // ---- public API ---------------------------------------------------------------------------

  call(fn: string, input: Uint8Array, signal?: AbortSignal): Promise<CallOutcome> {
    const t0 = performance.now();
    this.calls++;
    if (this.closed) return Promise.resolve(this.finish(this.closedFailure(), t0));
    if (signal?.aborted) return Promise.resolve(this.finish(this.abortedFailure(false), t0));
    const slot = this.idle.pop();
    const p = slot !== undefined ? this.run(slot, fn, input, signal, t0) : this.acquireAndRun(fn, input, signal, t0);
    this.running.add(p);
    void p.then(() => this.running.delete(p));
    return p;
  }

  stats(): SandboxStats {
    let busy = 0;
    for (const s of this.slots) if (s.busy) busy++;
    const n = Math.min(this.durationCount, DURATION_SAMPLES);
    const sorted = Array.from(this.durations.subarray(0, n)).sort((a, b) => a - b);
    return {
      instances: this.slots.size + this.starting,
      busy,
      queued: this.waiters.length,
      calls: this.calls,
      failures: { ...this.failures },
      p50Ms: percentile(sorted, 0.5, true),
      p99Ms: percentile(sorted, 0.99, true),
    };
  }

  async ready(): Promise<void> {
    if (this.closed) throw new Error(`plugin '${this.name}': the sandbox pool is closed`);
    if (this.slots.size > 0) return;
    const slot = await this.spawn();
    this.release(slot);
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      for (const w of this.waiters.splice(0)) w(this.closedFailure());
      const exits = this.idle.splice(0).map((s) => this.kill(s));
      await Promise.allSettled([...this.running]);
      exits.push(...[...this.slots].map((s) => this.kill(s)));
      await Promise.allSettled(exits);
      if (this.reaper !== null) clearInterval(this.reaper);
      this.reaper = null;
      if (this.kv !== null) await releaseKvStore(this.kv).catch(() => {});
    })();
    return this.closing;
  }

  // ---- instances ----------------------------------------------------------------------------

  private module(): Promise<WasmModule> {
    this.compiled ??= wasmApi.compile(this.prepared.wasm);
    return this.compiled;
  }

  /** Starts a worker; resolves when its instance is up. */
  private async spawn(): Promise<Slot> {
    this.starting++;
    try {
      const module = await this.module();
      if (this.closed) throw new Error("the sandbox pool is closed");
      return await this.startWorker(module);
    } finally {
      this.starting--;
    }
  }

  private startWorker(module: WasmModule): Promise<Slot> {
    const sab = new SharedArrayBuffer(DATA_OFFSET + DATA_BYTES);
    const down = new MessageChannel();
    const up = new MessageChannel();
    const worker = new Worker(SANDBOX_WORKER_URL, {
      workerData: {
        module,
        grant: workerGrant(this.grant),
        maxPages: this.prepared.maxPages,
        maxOutputBytes: this.limits.maxOutputBytes,
        sab,
        down: down.port2,
        up: up.port2,
      },
      transferList: [down.port2, up.port2],
      resourceLimits: WORKER_RESOURCE_LIMITS,
      // Extism imports node:wasi at load, which prints an ExperimentalWarning per worker.
      execArgv: ["--disable-warning=ExperimentalWarning"],
      // Nothing of the gateway's environment (API keys) is copied into the plugin's thread.
      env: {},
      name: `exoclaw-plugin:${this.name}`,
    });
    const slot: Slot = {
      worker,
      ctl: new Int32Array(sab, 0, CTL_SLOTS),
      bytes: new Uint8Array(sab, DATA_OFFSET, DATA_BYTES),
      text: Buffer.from(sab, DATA_OFFSET, DATA_BYTES),
      down: down.port1,
      up: up.port1,
      seq: 0,
      busy: false,
      dead: false,
      idleSince: 0,
      interrupt: null,
      hostAbort: new AbortController(),
      error: null,
    };
    return new Promise<Slot>((resolve, reject) => {
      let started = false;
      worker.on("message", (msg: WorkerToMain) => {
        switch (msg.t) {
          case "ready":
            started = true;
            this.slots.add(slot);
            this.startReaper();
            resolve(slot);
            break;
          case "start_failed":
            reject(new Error(msg.message));
            void this.kill(slot);
            break;
          case "log":
            if (this.debugLogs) this.logger.debug({ plugin: this.name, level: msg.level }, msg.message);
            break;
          case "host":
            void this.onHostRequest(slot, msg);
            break;
        }
      });
      worker.on("error", (err) => {
        slot.error = err;
      });
      worker.on("exit", (code) => {
        const wasDead = slot.dead;
        this.forget(slot);
        if (!started) {
          reject(slot.error ?? new Error(`the sandbox worker exited during start-up (code ${code})`));
          return;
        }
        if (wasDead || !slot.busy || slot.interrupt !== null) return;
        const oom = (slot.error as NodeJS.ErrnoException | null)?.code === "ERR_WORKER_OUT_OF_MEMORY";
        this.interrupt(
          slot,
          oom ? "memory" : "trap",
          oom
            ? `the sandbox worker ran out of host memory (${errorMessage(slot.error)}); the instance was stopped`
            : `the sandbox worker died (${slot.error !== null ? errorMessage(slot.error) : `exit code ${code}`}); the instance was stopped`,
        );
      });
    });
  }

  /** Terminates a worker (idempotent). */
  private kill(slot: Slot): Promise<void> {
    if (!slot.dead) {
      slot.dead = true;
      slot.hostAbort.abort();
      this.forget(slot);
    }
    return slot.worker.terminate().then(
      () => {},
      () => {},
    );
  }

  /** Removes a slot from the bookkeeping (not the worker itself). */
  private forget(slot: Slot): void {
    slot.dead = true;
    this.slots.delete(slot);
    const i = this.idle.indexOf(slot);
    if (i >= 0) this.idle.splice(i, 1);
    slot.down.close();
    slot.up.close();
  }

  /** Ends the call running on `slot` now, with this outcome. */
  private interrupt(slot: Slot, kind: CallFailureKind, message: string): void {
    if (slot.interrupt !== null) return;
    slot.interrupt = { kind, message };
    Atomics.notify(slot.ctl, CTL_RESP);
  }

  /** Gives a finished slot to the next waiter, or parks it. */
  private release(slot: Slot): void {
    slot.busy = false;
    if (slot.dead) {
      this.refill();
      return;
    }
    if (this.closed) {
      void this.kill(slot);
      return;
    }
    const next = this.waiters.shift();
    if (next !== undefined) {
      next(slot);
      return;
    }
    slot.idleSince = performance.now();
    slot.worker.unref();
    this.idle.push(slot);
  }

  /** Stops a slot that cannot be reused and starts a replacement if calls are waiting. */
  private discard(slot: Slot): void {
    void this.kill(slot);
    this.refill();
  }

  /** Starts instances for waiting calls, up to maxInFlight. */
  private refill(): void {
    while (this.waiters.length > 0 && this.slots.size + this.starting < this.limits.maxInFlight && !this.closed) {
      const waiter = this.waiters.shift() as Waiter;
      this.spawn().then(
        (slot) => waiter(slot),
        (err: unknown) => waiter(this.startFailure(err)),
      );
    }
  }

  private startReaper(): void {
    if (this.reaper !== null || this.closed) return;
    const every = Math.max(10, Math.min(10_000, Math.floor(this.idleTimeoutMs / 2)));
    this.reaper = setInterval(() => {
      const now = performance.now();
      for (const s of [...this.idle]) if (now - s.idleSince >= this.idleTimeoutMs) void this.kill(s);
      if (this.slots.size === 0 && this.starting === 0 && this.reaper !== null) {
        clearInterval(this.reaper);
        this.reaper = null;
      }
    }, every);
    this.reaper.unref();
  }

  // ---- calls --------------------------------------------------------------------------------

  private async acquireAndRun(fn: string, input: Uint8Array, signal: AbortSignal | undefined, t0: number): Promise<CallOutcome> {
    let got: Slot | Failure;
    if (this.slots.size + this.starting < this.limits.maxInFlight) {
      try {
        got = await this.spawn();
      } catch (err) {
        got = this.closed ? this.closedFailure() : this.startFailure(err);
      }
    } else if (this.waiters.length >= this.limits.maxQueued) {
      got = {
        ok: false,
        kind: "busy",
        message: `plugin '${this.name}' is busy: ${this.limits.maxInFlight} calls running and ${this.limits.maxQueued} waiting`,
      };
    } else {
      got = await new Promise<Slot | Failure>((resolve) => {
        const waiter: Waiter = (g) => {
          signal?.removeEventListener("abort", onAbort);
          resolve(g);
        };
        const onAbort = (): void => {
          const i = this.waiters.indexOf(waiter);
          if (i >= 0) this.waiters.splice(i, 1);
          resolve(this.abortedFailure(false));
        };
        this.waiters.push(waiter);
        signal?.addEventListener("abort", onAbort, { once: true });
      });
    }
    if ("ok" in got) return this.finish(got, t0);
    if (this.closed) {
      void this.kill(got);
      return this.finish(this.closedFailure(), t0);
    }
    if (signal?.aborted) {
      this.release(got);
      return this.finish(this.abortedFailure(false), t0);
    }
    return this.run(got, fn, input, signal, t0);
  }

  private fnName(fn: string): Buffer {
    let b = this.fnNames.get(fn);
    if (b === undefined) {
      b = Buffer.from(fn, "utf8");
      if (this.fnNames.size < 64) this.fnNames.set(fn, b);
    }
    return b;
  }

  /** Runs one call on a slot this call owns. */
  private async run(slot: Slot, fn: string, input: Uint8Array, signal: AbortSignal | undefined, t0: number): Promise<CallOutcome> {
    slot.busy = true;
    slot.interrupt = null;
    slot.worker.ref();
    const ctl = slot.ctl;
    const seq = ++slot.seq;
    const name = this.fnName(fn);
    const timeoutMs = this.limits.timeoutMs;
    if (name.length + input.length <= DATA_BYTES) {
      slot.bytes.set(name, 0);
      slot.bytes.set(input, name.length);
      ctl[CTL_IN_MODE] = 0;
    } else {
      slot.down.postMessage({ t: "call", seq, fn, input });
      ctl[CTL_IN_MODE] = 1;
    }
    ctl[CTL_FN_LEN] = name.length;
    ctl[CTL_IN_LEN] = input.length;
    ctl[CTL_TIMEOUT_MS] = timeoutMs;
    Atomics.store(ctl, CTL_REQ, seq);
    Atomics.notify(ctl, CTL_REQ);

    const onAbort = signal === undefined ? undefined : (): void => this.interrupt(slot, "aborted", this.abortedFailure(true).message);
    if (onAbort !== undefined) signal?.addEventListener("abort", onAbort, { once: true });
    const deadline = performance.now() + timeoutMs;
    let timedOut = false;
    let yielded = false;
    if (this.spinCooldown > 0) {
      this.spinCooldown--;
    } else if (this.execAvgMs < MAIN_SPIN_MS) {
      // Quick plugin: poll briefly instead of paying a thread wake-up (see protocol.mjs).
      const until = performance.now() + MAIN_SPIN_MS;
      while (Atomics.load(ctl, CTL_RESP) !== seq && performance.now() < until);
      if (Atomics.load(ctl, CTL_RESP) === seq) this.spinMisses = 0;
      else if (++this.spinMisses >= SPIN_MISSES) {
        this.spinMisses = 0;
        this.spinCooldown = SPIN_COOLDOWN;
      }
    }
    for (;;) {
      if (slot.interrupt !== null || Atomics.load(ctl, CTL_RESP) === seq) break;
      const left = deadline - performance.now();
      if (left <= 0) {
        timedOut = true;
        break;
      }
      const w = waitAsync(ctl, CTL_RESP, seq - 1, left);
      if (w.async) {
        yielded = true;
        await w.value;
      } else if (w.value === "not-equal" && Atomics.load(ctl, CTL_RESP) !== seq) {
        // Cannot happen with a sound worker; never spin on it.
        this.interrupt(slot, "trap", `plugin '${this.name}': the sandbox worker broke the call protocol; the instance was stopped`);
      }
    }
    if (onAbort !== undefined) signal?.removeEventListener("abort", onAbort);
    if (!yielded) {
      const turn = yieldIfStarving();
      if (turn !== null) await turn;
    }

    if (slot.interrupt !== null) {
      const { kind, message } = slot.interrupt;
      // A caller's abort (a cancelled turn, a stopping poller) is not the plugin's fault: no warning.
      if (kind === "aborted") this.logger.debug({ plugin: this.name, fn, kind, reason: message }, "plugin call aborted by the caller; instance replaced");
      else this.logger.warn({ plugin: this.name, fn, kind, reason: message }, "plugin call failed; instance replaced");
      this.onRestart?.(kind);
      this.discard(slot);
      return this.finish({ ok: false, kind, message }, t0);
    }
    if (timedOut) {
      const message = `plugin '${this.name}': the call to '${fn}' exceeded its time limit of ${timeoutMs} ms; the instance was stopped`;
      this.logger.warn({ plugin: this.name, fn, kind: "timeout", reason: message }, "plugin call failed; instance replaced");
      this.onRestart?.("timeout");
      this.discard(slot);
      return this.finish({ ok: false, kind: "timeout", message }, t0);
    }

    const status = ctl[CTL_STATUS] as number;
    const len = ctl[CTL_OUT_LEN] as number;
    this.execAvgMs = this.execAvgMs * 0.9 + ((ctl[CTL_EXEC_US] as number) / 1000) * 0.1;
    if (status === ST_OK) {
      // Posted before any large output on the same port: read first.
      const effects = ctl[CTL_EFFECTS] === 1 ? this.receiveEffects(slot, seq) : undefined;
      let output: Uint8Array;
      if (ctl[CTL_OUT_MODE] === 0) {
        output = slot.bytes.slice(0, len);
      } else {
        output = this.receiveOutput(slot, seq) ?? new Uint8Array(0);
      }
      this.release(slot);
      return this.finish({ ok: true, output, durationMs: 0, ...(effects !== undefined ? { effects } : {}) }, t0);
    }
    const detail = slot.text.toString("utf8", 0, len);
    let kind: CallFailureKind;
    switch (status) {
      case ST_PLUGIN_ERROR:
        kind = "plugin_error";
        break;
      case ST_MEMORY:
        kind = "memory";
        break;
      case ST_TIMEOUT:
        kind = "timeout";
        break;
      case ST_OUTPUT_TOO_LARGE:
        kind = "output_too_large";
        break;
      case ST_TRAP:
      case ST_START_FAILED:
      default:
        kind = "trap";
    }
    const message = `plugin '${this.name}': ${detail}`;
    if (status === ST_START_FAILED) {
      this.onRestart?.(kind);
      this.discard(slot);
    } else {
      // The worker itself is sound: after a trap it has already dropped the instance and builds
      // a fresh one from the compiled module before the next call.
      if (kind !== "plugin_error" && kind !== "output_too_large") {
        this.logger.warn({ plugin: this.name, fn, kind, reason: detail }, "plugin call failed; instance replaced");
        this.onRestart?.(kind);
      }
      this.release(slot);
    }
    return this.finish({ ok: false, kind, message }, t0);
  }

  /**
   * The connection effects of call `seq`, with `{{secret:NAME}}` placeholders substituted from
   * the grant (the worker already refused names not granted; an effect that still names one is
   * dropped). Secret values exist only on this thread and in what is sent to the granted host.
   */
  private receiveEffects(slot: Slot, seq: number): ConnectionEffect[] {
    const got = receiveMessageOnPort(slot.up) as { message: { t: string; seq: number; effects: ConnectionEffect[] } } | undefined;
    if (got === undefined || got.message.t !== "effects" || got.message.seq !== seq) return [];
    const secrets = this.grant.secrets;
    const out: ConnectionEffect[] = [];
    for (const e of got.message.effects) {
      try {
        if (e.op === "open") {
          const headers: Record<string, string> = {};
          for (const [k, v] of Object.entries(e.headers)) headers[k] = substituteSecrets(v, secrets);
          out.push({ op: "open", url: substituteSecrets(e.url, secrets), headers });
        } else if (e.op === "send" && typeof e.data === "string") {
          out.push({ op: "send", data: substituteSecrets(e.data, secrets) });
        } else if (e.op === "heartbeat") {
          out.push({ ...e, payload: substituteSecrets(e.payload, secrets) });
        } else out.push(e);
      } catch (err) {
        this.logger.warn({ plugin: this.name, op: e.op, reason: errorMessage(err) }, "connection effect dropped");
      }
    }
    return out;
  }

  private receiveOutput(slot: Slot, seq: number): Uint8Array | null {
    for (;;) {
      const got = receiveMessageOnPort(slot.up) as { message: { t: string; seq: number; output: Uint8Array } } | undefined;
      if (got === undefined) return null;
      if (got.message.t === "out" && got.message.seq === seq) return got.message.output;
    }
  }

  private finish(outcome: Failure | CallOutcome, t0: number): CallOutcome {
    const durationMs = performance.now() - t0;
    this.durations[this.durationCount++ % DURATION_SAMPLES] = durationMs;
    if (!outcome.ok) {
      this.failures[outcome.kind] = (this.failures[outcome.kind] ?? 0) + 1;
      return { ok: false, kind: outcome.kind, message: outcome.message, durationMs };
    }
    return outcome.effects !== undefined
      ? { ok: true, output: outcome.output, durationMs, effects: outcome.effects }
      : { ok: true, output: outcome.output, durationMs };
  }

  private closedFailure(): Failure {
    return { ok: false, kind: "closed", message: `plugin '${this.name}' is unloaded (its sandbox pool is closed)` };
  }

  private abortedFailure(running: boolean): Failure {
    return {
      ok: false,
      kind: "aborted",
      message: `plugin '${this.name}': the call was aborted by the caller${running ? "; the instance was stopped" : ""}`,
    };
  }

  private startFailure(err: unknown): Failure {
    return { ok: false, kind: "trap", message: `plugin '${this.name}' could not start an instance: ${errorMessage(err)}` };
  }

  // ---- host requests from workers (kv, http, secrets) -----------------------------------------

  private async onHostRequest(slot: Slot, msg: HostRequest): Promise<void> {
    let reply: HostReply;
    const transfer: ArrayBuffer[] = [];
    try {
      let value = await this.hostOp(slot, msg);
      if (value instanceof Uint8Array) {
        // kv values are shared with the store: hand the worker its own copy.
        const copy = value.slice();
        transfer.push(copy.buffer);
        value = copy;
      }
      reply = { t: "reply", id: msg.id, ok: true, value };
    } catch (err) {
      let error: string;
      if (err instanceof KvError || err instanceof HostHttpError || err instanceof HostSecretError) error = err.message;
      else if (msg.op === "http") error = redactSecrets(errorMessage(err), this.grant.secrets);
      else {
        this.logger.warn({ plugin: this.name, op: msg.op, reason: errorMessage(err) }, "plugin kv store failed");
        error = "the key-value store is unavailable (see the gateway log)";
      }
      reply = { t: "reply", id: msg.id, ok: false, error };
    }
    if (slot.dead) return;
    slot.down.postMessage(reply, transfer);
    if ((Atomics.load(slot.ctl, CTL_HOST_REPLY) as number) < msg.id) Atomics.store(slot.ctl, CTL_HOST_REPLY, msg.id);
    Atomics.notify(slot.ctl, CTL_HOST_REPLY);
  }

  private async hostOp(slot: Slot, msg: HostRequest): Promise<unknown> {
    if (msg.op === "http") {
      if (this.grant.http === undefined) throw new HostHttpError("capability 'http' is not granted to this plugin");
      const signal = AbortSignal.any([slot.hostAbort.signal, AbortSignal.timeout(Math.max(1, Math.ceil(msg.budgetMs)))]);
      return this.options.services.http(msg.req, this.grant, signal);
    }
    if (msg.op === "hmac_verify") return hmacVerify(this.grant, msg);
    if (msg.op === "secret_equals") return secretEquals(this.grant, msg);
    const kv = this.kv;
    const quota = this.grant.kv?.quotaBytes;
    if (kv === null || quota === undefined) throw new KvError("capability 'kv' is not granted to this plugin");
    switch (msg.op) {
      case "kv_get":
        return kv.get(msg.key);
      case "kv_set":
        return kv.set(msg.key, msg.value, quota).then(() => null);
      case "kv_delete":
        return kv.delete(msg.key);
      case "kv_list":
        return kv.list(msg.prefix);
    }
  }
}

/**
 * Creates the sandbox pool of one plugin. Instances (worker threads) start lazily on the first
 * calls, up to `limits.maxInFlight`, and stop after `idleTimeoutMs` unused.
 *
 * The module is checked and its memory maximum rewritten here, synchronously; it is compiled
 * (once, shared by all instances) on first use.
 *
 * @throws SandboxModuleError if the module is malformed, imports something the sandbox does not
 *   provide, or needs more initial memory than `limits.memoryBytes`.
 */
export function createSandboxPool(options: SandboxPoolOptions): SandboxPool {
  return new Pool(options);
}
