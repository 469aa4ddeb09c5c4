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
  /** Clears `requests`. */
  reset(): void;
  close(): Promise<void>;
}

export function startEmulator(options?: EmulatorOptions): Promise<Emulator>;
