/**
 * One host-owned persistent connection (a channel account whose plugin exports `connect` and
 * `on_frame`, e.g. the Discord Gateway): the host opens the WebSocket the plugin asked for with
 * `ws_open`, hands every event (open, each frame, each timer, the close) to `on_frame` one at a
 * time and in order, applies what the call asked for (frames to send, heartbeat, timers, close),
 * journals the messages it returned, and only then persists the plugin's `state` — so a crash
 * anywhere hands the plugin its previous state, the platform replays from there (Discord
 * RESUME), and the platform message id answers each message once.
 *
 * The host owns the rest: reconnecting with exponential backoff (reset once a connection stayed
 * up `stableMs`), the heartbeat the plugin configures (sent on the host's clock; with
 * `expectAck`, a beat due while the previous one is unacknowledged closes the connection and
 * reconnects), at most {@link MAX_TIMERS} timers, and backpressure: at most `maxQueuedFrames`
 * events wait for the plugin, beyond that the socket is paused (TCP pushes back on the server).
 * A plugin call that fails (trap, timeout, error, malformed output) or a message that cannot be
 * journaled closes the connection and reconnects with backoff: the frame is not acknowledged
 * (its state not persisted), so a resumable platform delivers it again.
 */
import { randomBytes } from "node:crypto";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import type WebSocket from "ws";
import type { ConnectionEffect } from "../plugins/index.js";
import { errorMessage, sleep } from "../util/index.js";
import { checkPollResult } from "./messages.js";
import type { Admission, ChannelLogger, FrameKind } from "./types.js";

/** Most timers one connection may have pending; more are refused (logged). */
export const MAX_TIMERS = 16;
/** Shortest timer the host runs, ms (shorter ones wait this long: a plugin cannot spin the host). */
export const MIN_TIMER_MS = 10;
/** Largest state a plugin may keep, characters. */
export const MAX_STATE_CHARS = 64 * 1024;
/** Close code the host uses for its own closes (not 1000/1001, which end a Discord session). */
export const HOST_CLOSE_CODE = 4000;

/** Where the state of `channel`/`account` lives: `<stateDir>/channels/<channel>/<account>.state` (names already checked). */
export function connectionStatePath(stateDir: string, channel: string, account: string): string {
  return path.join(stateDir, "channels", channel, `${encodeURIComponent(account)}.state`);
}

/** Reads a persisted state; undefined when none. @throws Error naming the file when it exists but cannot be read */
export async function readState(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new Error(`cannot read connection state ${file}: ${errorMessage(err)}`);
  }
}

/** Writes a state atomically, mode 0600 (it may hold session ids). @throws Error naming the file */
export async function writeState(file: string, state: string): Promise<void> {
  const tmp = `${file}.${randomBytes(4).toString("hex")}.tmp`;
  try {
    await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    await writeFile(tmp, state, { encoding: "utf8", mode: 0o600 });
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => {});
    throw new Error(`cannot write connection state ${file}: ${errorMessage(err)}`);
  }
}

/** Options of a {@link Connection}. */
export interface ConnectionOptions {
  channel: string;
  account: string;
  /** Where the plugin's state is persisted ({@link connectionStatePath}). */
  stateFile: string;
  logger: ChannelLogger;
  /** Whether the plugin is loaded and exports `connect` + `on_frame` now. */
  ready(): boolean;
  /** Calls `connect` or `on_frame`; resolves with the output and the call's connection effects. */
  call(fn: "connect" | "on_frame", input: unknown, signal: AbortSignal): Promise<{ value: unknown; effects: ConnectionEffect[] }>;
  /** Admits messages in order; resolves when each is journaled or refused. */
  admit(messages: unknown[]): Promise<Admission[]>;
  /** First reconnect wait after a failure and the cap, ms; default 500 and 30 000 (±20 % jitter). */
  backoff?: { baseMs: number; maxMs: number };
  /** A connection up this long resets the backoff, ms; default 30 000. */
  stableMs?: number;
  /** Opening handshake limit, ms; default 15 000. */
  handshakeTimeoutMs?: number;
  /** Events waiting for the plugin before the socket is paused; default 64. */
  maxQueuedFrames?: number;
  /** Largest inbound frame, bytes; default 4 MiB (larger: the socket closes with 1009). */
  maxFrameBytes?: number;
  /** Unsent outbound bytes above which the connection counts as stalled and is reopened; default 8 MiB. */
  maxBufferedBytes?: number;
  /**
   * Outbound frames the plugin may send (`ws_send`, heartbeats excluded): a burst of `burst`,
   * refilled at `perSecond`; default 512 and 128. A plugin over it is flooding: the connection
   * is closed and reconnected with backoff.
   */
  sendRate?: { burst: number; perSecond: number };
}

/** One event for `on_frame`. */
interface Event {
  kind: FrameKind;
  data?: string | Uint8Array;
  code?: number;
  reason?: string;
  name?: string;
}

/** How one connection ended. */
interface SessionEnd {
  state: string | undefined;
  /** It stayed up long enough to reset the backoff. */
  stable: boolean;
  /** The plugin's `ws_close` asked for this wait before reconnecting, ms. */
  reconnectAfterMs?: number;
}

const isMap = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v) && !ArrayBuffer.isView(v);

/** The `state` of a plugin output: undefined when absent, else the string; throws on a bad one. */
function stateOf(value: unknown): string | undefined {
  if (!isMap(value) || value.state === undefined || value.state === null) return undefined;
  if (typeof value.state !== "string") throw new Error("'state' is not a string");
  if (value.state.length > MAX_STATE_CHARS) throw new Error(`'state' is longer than ${MAX_STATE_CHARS} characters`);
  return value.state;
}

/** A persistent connection loop; `start` once, `stop` to end it. */
export class Connection {
  private readonly abort = new AbortController();
  private loop: Promise<void> | null = null;
  /** The socket of the session running now (closed by `stop`). */
  private socket: WebSocket | null = null;
  private wake: (() => void) | null = null;
  /** Connections opened (for tests and logs). */
  opened = 0;

  constructor(private readonly o: ConnectionOptions) {}

  start(): void {
    this.loop ??= this.run();
  }

  /** Ends the loop: the socket is closed with {@link HOST_CLOSE_CODE} (the session stays resumable), a call in flight aborted. */
  async stop(): Promise<void> {
    this.abort.abort(new Error("connection stopped"));
    try {
      this.socket?.close(HOST_CLOSE_CODE, "exoclaw stopping");
    } catch {
      this.socket?.terminate();
    }
    this.wake?.();
    await this.loop;
  }

  private backoffMs(attempt: number): number {
    if (attempt <= 0) return 0;
    const { baseMs, maxMs } = this.o.backoff ?? { baseMs: 500, maxMs: 30_000 };
    const raw = Math.min(maxMs, baseMs * 2 ** Math.min(attempt - 1, 16));
    return Math.round(raw * (0.8 + Math.random() * 0.4));
  }

  private async run(): Promise<void> {
    const { channel, account, logger } = this.o;
    const signal = this.abort.signal;
    let state: string | undefined;
    try {
      state = await readState(this.o.stateFile);
    } catch (err) {
      logger.error({ channel, account, error: errorMessage(err) }, "connection: the persisted state cannot be read; starting without it");
    }
    let attempt = 0;
    let waitingForPlugin = false;
    while (!signal.aborted) {
      if (!this.o.ready()) {
        if (!waitingForPlugin)
          logger.warn({ channel, account }, "connection: the channel plugin is not loaded or does not export connect and on_frame; waiting");
        waitingForPlugin = true;
        await sleep(1000, signal).catch(() => {});
        continue;
      }
      waitingForPlugin = false;
      let end: SessionEnd;
      try {
        end = await this.session(state, attempt);
      } catch (err) {
        end = { state, stable: false };
        if (!signal.aborted) logger.warn({ channel, account, attempt, error: errorMessage(err) }, "connection failed");
      }
      state = end.state;
      if (signal.aborted) break;
      attempt = end.stable ? 0 : attempt + 1;
      const delay = end.reconnectAfterMs ?? this.backoffMs(attempt);
      logger.info({ channel, account, attempt, retryInMs: delay }, "connection closed; reconnecting");
      if (delay > 0) await sleep(delay, signal).catch(() => {});
    }
  }

  /** Persists `next` when it differs from `prev`; returns the state now in force. */
  private async persist(prev: string | undefined, next: string | undefined): Promise<string | undefined> {
    if (next === undefined || next === prev) return prev;
    await writeState(this.o.stateFile, next);
    return next;
  }

  /** One connection: `connect`, open, events until it closes or fails. */
  private async session(initial: string | undefined, attempt: number): Promise<SessionEnd> {
    const { channel, account, logger } = this.o;
    const signal = this.abort.signal;
    let state = initial;
    const connected = await this.o.call("connect", { account, state, attempt }, signal);
    state = await this.persist(state, stateOf(connected.value));
    const open = connected.effects.find((e): e is Extract<ConnectionEffect, { op: "open" }> => e.op === "open");
    if (open === undefined) throw new Error("the plugin's connect did not call ws_open");
    let host = "(invalid URL)";
    try {
      host = new URL(open.url).host;
    } catch {}

    const events: Event[] = [];
    const maxQueued = this.o.maxQueuedFrames ?? 64;
    const maxBuffered = this.o.maxBufferedBytes ?? 8 * 1024 * 1024;
    let paused = false;
    let closed = false;
    let reconnectAfterMs: number | undefined;
    const timers = new Map<string, NodeJS.Timeout>();
    let timerWarned = false;
    const hb = { intervalMs: 0, payload: "", expectAck: false, acked: true, first: null as NodeJS.Timeout | null, every: null as NodeJS.Timeout | null };
    const openedAt = performance.now();
    let framesDone = 0;
    const rate = this.o.sendRate ?? { burst: 512, perSecond: 128 };
    const bucket = { tokens: rate.burst, at: performance.now() };
    let flooding = false;

    // `ws` (and the http, https, tls builtins it requires) loads with the first connection, not
    // at every gateway start (docs/operations.md, "Start-up time and what ready means").
    const { default: WebSocketClass } = await import("ws");
    // Never the URL itself: it may carry a substituted secret.
    const ws = new WebSocketClass(open.url, {
      headers: open.headers,
      handshakeTimeout: this.o.handshakeTimeoutMs ?? 15_000,
      maxPayload: this.o.maxFrameBytes ?? 4 * 1024 * 1024,
      perMessageDeflate: false,
      followRedirects: false,
    });
    this.socket = ws;
    this.opened++;
    const push = (e: Event): void => {
      events.push(e);
      if (!paused && events.length >= maxQueued && ws.readyState === ws.OPEN) {
        paused = true;
        ws.pause();
      }
      this.wake?.();
    };
    ws.on("open", () => push({ kind: "open" }));
    ws.on("message", (data: WebSocket.RawData, isBinary: boolean) => {
      const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as Buffer);
      push(isBinary ? { kind: "binary", data: new Uint8Array(buf) } : { kind: "text", data: buf.toString("utf8") });
    });
    ws.on("close", (code: number, reason: Buffer) => {
      closed = true;
      push({ kind: "closed", code, reason: reason.toString("utf8") });
    });
    ws.on("error", (err: Error) => logger.warn({ channel, account, host, error: errorMessage(err) }, "connection error"));

    const stopHeartbeat = (): void => {
      if (hb.first !== null) clearTimeout(hb.first);
      if (hb.every !== null) clearInterval(hb.every);
      hb.first = hb.every = null;
    };
    /** Closes from the host's side; the close event ends the session. A zombie peer is cut after 2 s. */
    const hostClose = (reason: string): void => {
      if (ws.readyState === ws.CLOSED) return;
      try {
        ws.close(HOST_CLOSE_CODE, reason);
      } catch {
        ws.terminate();
      }
      setTimeout(() => ws.terminate(), 2000).unref();
    };
    const beat = (): void => {
      if (ws.readyState !== ws.OPEN) return;
      if (hb.expectAck && !hb.acked) {
        logger.warn({ channel, account, host, intervalMs: hb.intervalMs }, "connection: heartbeat not acknowledged; reconnecting");
        stopHeartbeat();
        ws.terminate();
        return;
      }
      hb.acked = false;
      ws.send(hb.payload);
    };
    const send = (data: string | Uint8Array): void => {
      if (flooding) return;
      const now = performance.now();
      bucket.tokens = Math.min(rate.burst, bucket.tokens + ((now - bucket.at) / 1000) * rate.perSecond);
      bucket.at = now;
      if (bucket.tokens < 1) {
        flooding = true;
        logger.warn(
          { channel, account, host, burst: rate.burst, perSecond: rate.perSecond },
          "connection: the plugin sends frames faster than allowed; reconnecting",
        );
        hostClose("plugin flooding");
        return;
      }
      bucket.tokens--;
      if (ws.readyState !== ws.OPEN) {
        logger.debug({ channel, account, host }, "connection: frame dropped (the connection is not open)");
        return;
      }
      if (ws.bufferedAmount > maxBuffered) {
        logger.warn({ channel, account, host, buffered: ws.bufferedAmount }, "connection: outbound frames not draining; reconnecting");
        ws.terminate();
        return;
      }
      ws.send(data);
    };
    const apply = (effects: ConnectionEffect[]): void => {
      for (const e of effects) {
        switch (e.op) {
          case "open":
            break; // only meaningful in connect (the worker refuses it elsewhere)
          case "send":
            send(e.data);
            break;
          case "close":
            reconnectAfterMs = e.reconnectAfterMs;
            try {
              ws.close(e.code ?? HOST_CLOSE_CODE, e.reason ?? "");
            } catch {
              ws.terminate();
            }
            setTimeout(() => ws.terminate(), 2000).unref();
            break;
          case "heartbeat": {
            const changed = e.intervalMs !== hb.intervalMs;
            hb.payload = e.payload;
            hb.expectAck = e.expectAck;
            if (!changed) break;
            stopHeartbeat();
            hb.intervalMs = e.intervalMs;
            hb.acked = true;
            if (e.intervalMs === 0) break;
            hb.first = setTimeout(() => {
              hb.first = null;
              beat();
              hb.every = setInterval(beat, hb.intervalMs);
            }, e.firstDelayMs ?? e.intervalMs);
            break;
          }
          case "ack":
            hb.acked = true;
            break;
          case "timer": {
            const old = timers.get(e.name);
            if (old === undefined && timers.size >= MAX_TIMERS) {
              if (!timerWarned) logger.warn({ channel, account, max: MAX_TIMERS, name: e.name }, "connection: timer refused (too many pending)");
              timerWarned = true;
              break;
            }
            if (old !== undefined) clearTimeout(old);
            timers.set(
              e.name,
              setTimeout(
                () => {
                  timers.delete(e.name);
                  push({ kind: "timer", name: e.name });
                },
                Math.max(MIN_TIMER_MS, e.afterMs),
              ),
            );
            break;
          }
          case "timer_cancel": {
            const t = timers.get(e.name);
            if (t !== undefined) clearTimeout(t);
            timers.delete(e.name);
            break;
          }
        }
      }
    };

    // connect's own effects other than the open (a heartbeat, timers) apply once the socket exists.
    apply(connected.effects.filter((e) => e.op !== "open" && e.op !== "send"));
    const signal2 = this.abort.signal;
    try {
      for (;;) {
        if (signal2.aborted) break;
        const ev = events.shift();
        if (ev === undefined) {
          await new Promise<void>((resolve) => (this.wake = resolve));
          this.wake = null;
          continue;
        }
        if (paused && events.length <= maxQueued / 4 && !closed) {
          paused = false;
          ws.resume();
        }
        const input = { account, ...(state !== undefined ? { state } : {}), ...ev };
        let out: { value: unknown; effects: ConnectionEffect[] };
        try {
          out = await this.o.call("on_frame", input, signal2);
        } catch (err) {
          if (signal2.aborted) break;
          logger.warn(
            { channel, account, host, kind: ev.kind, error: errorMessage(err) },
            "connection: on_frame failed; reconnecting (the event is not acknowledged)",
          );
          if (ev.kind === "closed") break;
          hostClose("plugin failed");
          // Wait for the close event (or the 2 s cut); events meanwhile are dropped: a resumable platform replays them.
          while (!closed && !signal2.aborted) await new Promise<void>((resolve) => (this.wake = resolve));
          break;
        }
        const result = checkPollResult(out.value);
        let next: string | undefined;
        try {
          if (typeof result === "string") throw new Error(result);
          next = stateOf(out.value);
        } catch (err) {
          logger.warn({ channel, account, host, error: errorMessage(err) }, "connection: on_frame returned a malformed result; reconnecting");
          if (ev.kind === "closed") break;
          hostClose("plugin failed");
          while (!closed && !signal2.aborted) await new Promise<void>((resolve) => (this.wake = resolve));
          break;
        }
        if (ev.kind !== "closed") apply(out.effects);
        if (typeof result !== "string" && result.messages.length > 0) {
          const admissions = await this.o.admit(result.messages);
          const retry = admissions.find((a) => a.kind === "retry");
          if (retry !== undefined) {
            logger.warn({ channel, account, reason: retry.reason }, "connection: a message could not be journaled; reconnecting (it is replayed on resume)");
            if (ev.kind === "closed") break;
            hostClose("message not journaled");
            while (!closed && !signal2.aborted) await new Promise<void>((resolve) => (this.wake = resolve));
            break;
          }
        }
        state = await this.persist(state, next);
        framesDone++;
        if (ev.kind === "closed") {
          logger.info({ channel, account, host, code: ev.code, reason: ev.reason }, "connection closed by the peer or the host");
          break;
        }
      }
    } finally {
      stopHeartbeat();
      for (const t of timers.values()) clearTimeout(t);
      timers.clear();
      if (ws.readyState !== ws.CLOSED) ws.terminate();
      ws.removeAllListeners("message");
      this.socket = null;
      this.wake = null;
    }
    const stable = framesDone > 1 && performance.now() - openedAt >= (this.o.stableMs ?? 30_000);
    return { state, stable, ...(reconnectAfterMs !== undefined ? { reconnectAfterMs } : {}) };
  }
}
