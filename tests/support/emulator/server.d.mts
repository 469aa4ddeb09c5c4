// Types for server.mjs, so TypeScript tests can import the emulator (no allowJs in tsconfig).
import type { IncomingHttpHeaders } from "node:http";

export interface RecordedRequest {
  provider: "anthropic" | "openai" | "ollama" | "gemini";
  /** URL path without the query string. */
  path: string;
  headers: IncomingHttpHeaders;
  /** The parsed JSON body (the raw text when it is not JSON). */
  body: any;
  /** Size of the request body, bytes (the reported input tokens are ceil(bytes / 4)). */
  bytes: number;
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

/** A failure answered instead of the scripted reply, for requests matching every given field (see server.mjs). */
export interface FaultRule {
  provider?: "anthropic" | "openai" | "ollama";
  /** Exact `model` of the request body. */
  model?: string;
  /** A substring of the credential (`x-api-key` or `Authorization`). */
  key?: string;
  /** `overloaded`: Anthropic 529, OpenAI/Ollama 503; `cut`: a streamed answer starts ("Partial ") and the connection dies. */
  mode: "http_500" | "http_429" | "overloaded" | "http_401" | "http_400" | "cut";
  /** `retry-after` header value sent with the error. */
  retryAfter?: string;
  /** Requests it fails before it lapses; default unlimited. */
  times?: number;
  /** Requests it failed so far (kept by the emulator). */
  hits?: number;
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
  /** Adds a fault rule (checked before the content script; first match wins); returns the live rule (its `hits` count). */
  fault(rule: FaultRule): FaultRule;
  /** Removes every fault rule. */
  clearFaults(): void;
  /** Clears `requests` and `abandoned`. */
  reset(): void;
  close(): Promise<void>;
}

export function startEmulator(options?: EmulatorOptions): Promise<Emulator>;
