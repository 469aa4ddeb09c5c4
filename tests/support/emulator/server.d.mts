// Types for server.mjs, so TypeScript tests can import the emulator (no allowJs in tsconfig).
import type { IncomingHttpHeaders } from "node:http";

export interface RecordedRequest {
  provider: "anthropic" | "openai" | "ollama";
  /** URL path without the query string. */
  path: string;
  headers: IncomingHttpHeaders;
  /** The parsed JSON body (the raw text when it is not JSON). */
  body: any;
}

export interface EmulatorOptions {
  /** 0 (default) picks a free port. */
  port?: number;
  /** Default "127.0.0.1". */
  host?: string;
  /** Delay before the first byte of every model response. */
  latencyMs?: number;
  /** Keep model requests in `requests` (default true; turn off for long benchmarks). */
  record?: boolean;
}

export interface Emulator {
  /** e.g. "http://127.0.0.1:43123" (no trailing slash). */
  url: string;
  port: number;
  /** Live list of model requests received. */
  requests: RecordedRequest[];
  /**
   * Live list of model requests whose client closed the connection before the response was
   * complete (an aborted or timed-out call); a cut the emulator scripts itself is not listed.
   */
  abandoned: RecordedRequest[];
  /** Resolves with the first abandoned request matching `pred` (listed or future); rejects after `timeoutMs` (default 15000). */
  waitForAbandoned(pred: (r: RecordedRequest) => boolean, timeoutMs?: number): Promise<RecordedRequest>;
  /** Clears `requests` and `abandoned`. */
  reset(): void;
  close(): Promise<void>;
}

export function startEmulator(options?: EmulatorOptions): Promise<Emulator>;
