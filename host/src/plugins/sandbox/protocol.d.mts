// Type declarations for protocol.mjs (kept by hand; see that file for the protocol itself).

export declare const CTL_REQ: 0;
export declare const CTL_RESP: 1;
export declare const CTL_FN_LEN: 2;
export declare const CTL_IN_LEN: 3;
export declare const CTL_IN_MODE: 4;
export declare const CTL_TIMEOUT_MS: 5;
export declare const CTL_STATUS: 6;
export declare const CTL_OUT_LEN: 7;
export declare const CTL_OUT_MODE: 8;
export declare const CTL_HOST_REPLY: 9;
export declare const CTL_EXEC_US: 10;
export declare const CTL_EFFECTS: 11;
export declare const CTL_SLOTS: 16;
export declare const DATA_OFFSET: number;
export declare const DATA_BYTES: number;

export declare const WORKER_SPIN_MS: number;
export declare const MAIN_SPIN_MS: number;
export declare const SPIN_MISSES: number;
export declare const SPIN_COOLDOWN: number;

export declare const ST_OK: 0;
export declare const ST_PLUGIN_ERROR: 1;
export declare const ST_TRAP: 2;
export declare const ST_MEMORY: 3;
export declare const ST_TIMEOUT: 4;
export declare const ST_OUTPUT_TOO_LARGE: 5;
export declare const ST_START_FAILED: 6;

export declare const HOST_MODULE: "exoclaw:host/v1";
export type HostCapability = "log" | "clock" | "random" | "config" | "kv" | "fs" | "http" | "secrets";
export declare const HOST_FUNCTIONS: Readonly<Record<string, HostCapability>>;
export declare const CONNECTION_EXPORTS: readonly string[];
export declare const MAX_EFFECTS_PER_CALL: number;
export declare const MAX_SEND_BYTES_PER_CALL: number;
export declare const MAX_FRAME_BYTES: number;
export declare const MAX_TIMERS: number;
export declare const MAX_TIMER_MS: number;
export declare const MIN_HEARTBEAT_MS: number;
export declare const MAX_TIMER_NAME: number;
export declare function wsDenial(grant: { hosts: string[]; methods?: string[] } | undefined, url: URL): string | null;

/**
 * What a connection host function asked for during a `connect` / `on_frame` call, applied by the
 * host when the call returns (in order; dropped when the call fails). Worker-side shape: `open`
 * and text `send` data still carry `{{secret:NAME}}` placeholders (the pool substitutes them).
 */
export type ConnectionEffect =
  | { op: "open"; url: string; headers: Record<string, string> }
  | { op: "send"; data: string | Uint8Array }
  | { op: "close"; code?: number; reason?: string; reconnectAfterMs?: number }
  | { op: "heartbeat"; intervalMs: number; firstDelayMs?: number; payload: string; expectAck: boolean }
  | { op: "ack" }
  | { op: "timer"; name: string; afterMs: number }
  | { op: "timer_cancel"; name: string };
export declare const EXTISM_MODULE: "extism:host/env";
export declare const EXTISM_KERNEL: readonly string[];

export declare const MAX_RANDOM_BYTES: number;
export declare const MAX_HTTP_BODY_BYTES: number;
export declare const MAX_FS_BYTES: number;
export declare const MAX_HMAC_DATA_BYTES: number;
export declare const HMAC_ALGORITHMS: readonly string[];
export declare const MAX_REQUEST_BYTES: number;
export declare const MAX_KV_KEY_BYTES: number;
export declare const MAX_LOG_BYTES: number;
export declare const MAX_LOG_LINES_PER_CALL: number;

export declare function hostMatches(pattern: string, hostname: string): boolean;
export declare function httpDenial(grant: { hosts: string[]; methods?: string[] } | undefined, method: string, url: URL): string | null;

/** Messages a worker posts to the main thread (parentPort). */
export type WorkerToMain = { t: "ready" } | { t: "start_failed"; message: string } | { t: "log"; level: string; message: string } | HostRequest;

/** A host function call the worker forwards to the main thread; `budgetMs` = the call's remaining budget when sent. */
export type HostRequest =
  | { t: "host"; id: number; op: "kv_get"; key: string; budgetMs: number }
  | { t: "host"; id: number; op: "kv_set"; key: string; value: Uint8Array; budgetMs: number }
  | { t: "host"; id: number; op: "kv_delete"; key: string; budgetMs: number }
  | { t: "host"; id: number; op: "kv_list"; prefix: string; budgetMs: number }
  | {
      t: "host";
      id: number;
      op: "http";
      req: { method: string; url: string; headers: Record<string, string>; body?: Uint8Array };
      budgetMs: number;
    }
  | { t: "host"; id: number; op: "hmac_verify"; algorithm: string; secret: string; data: Uint8Array; signature: string; budgetMs: number }
  | { t: "host"; id: number; op: "secret_equals"; secret: string; value: string; budgetMs: number };

/** Reply of the main thread to a `host` request, posted on the worker's down port. */
export type HostReply = { t: "reply"; id: number; ok: true; value: unknown } | { t: "reply"; id: number; ok: false; error: string };
