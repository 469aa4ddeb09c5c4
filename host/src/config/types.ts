import type { Binding } from "../router/types.js";

/** The LLM providers exoclaw speaks to, each through its official SDK. */
export type ProviderName = "anthropic" | "openai" | "ollama";

/** Gateway listener settings. */
export interface GatewayConfig {
  /** Interface to bind; default `127.0.0.1`. */
  bind: string;
  /** TCP port; default 7200; 0 picks a free port. */
  port: number;
  /** Shared secret clients must present; required when `bind` is not loopback. */
  token?: string;
  /** Largest accepted WebSocket frame, bytes; default 1 MiB. Larger frames get an error. */
  maxFrameBytes: number;
  /** Pending outbound bytes on one connection before it is closed as a slow consumer; default 16 MiB. */
  maxBufferedBytes: number;
  /** How long Ctrl-C waits for in-flight turns before aborting them, ms; default 10000. */
  shutdownGraceMs: number;
  /** Force a transport; default `auto` (uWebSockets.js, falling back to `ws`). */
  transport: "auto" | "uws" | "ws";
}

/** One agent: which model it uses and how it behaves. */
export interface AgentConfig {
  id: string;
  provider: ProviderName;
  model: string;
  systemPrompt?: string;
  /** Model calls per turn before the turn ends with an error; default 10. */
  maxIterations: number;
  /** Max output tokens per model call; default 4096. */
  maxTokens: number;
  /** Tool allowlist: exact names or `*` globs; default `["*"]`. */
  tools: string[];
}

/** Where each provider is reached. `baseUrl` undefined = the SDK's own default / env variable. */
export interface ProviderEndpoint {
  baseUrl?: string;
  apiKey?: string;
  /** Request timeout, ms; default 600000 (the SDKs' default). */
  timeoutMs: number;
}

/** The whole resolved configuration (defaults < config file < environment < CLI flags). */
export interface Config {
  gateway: GatewayConfig;
  agents: AgentConfig[];
  defaultAgent: string;
  bindings: Binding[];
  providers: Record<ProviderName, ProviderEndpoint>;
  plugins: {
    /** Directories scanned for `*.wasm`, in order (first tool name wins). */
    dirs: string[];
    /** Instances per plugin for parallel calls; default 4. */
    maxInstances: number;
  };
  /** The config file that was read, if any. */
  source?: string;
}
