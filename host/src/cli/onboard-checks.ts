// The live checks `exoclaw onboard` makes before it saves anything: a provider key against the
// provider's model list (through the official SDKs, as the agent calls them), a local Ollama, a
// Telegram bot token (getMe) and the operator's own Telegram id (getUpdates).
import type { ProviderName } from "../config/index.js";
import { errorMessage } from "../util/index.js";

/** Time allowed to each check's HTTP call, ms. */
export const CHECK_TIMEOUT_MS = 15_000;

/** Where and how onboard reaches a provider. */
export interface ProviderTarget {
  provider: ProviderName;
  /** Base URL; undefined = the SDK's default (for Ollama, `http://127.0.0.1:11434`). */
  baseUrl?: string;
  apiKey?: string;
}

/** A check that failed: `message` says what the provider or platform answered (never the key). */
export class CheckError extends Error {
  constructor(
    message: string,
    /** The HTTP status when the service answered one (401 = key refused). */
    readonly status?: number,
  ) {
    super(message);
    this.name = "CheckError";
  }
}

/**
 * Verifies a key with the cheapest authenticated call there is, the provider's model list
 * (no tokens spent: Anthropic `GET /v1/models`, OpenAI `GET /v1/models`, Ollama `GET /api/tags`),
 * through the same SDKs the agent uses.
 * @returns the model ids, in the provider's order
 * @throws CheckError naming the status (401: the key was refused) or the network error
 */
export async function listProviderModels(target: ProviderTarget): Promise<string[]> {
  try {
    if (target.provider === "anthropic") {
      const { default: Anthropic } = await import("@anthropic-ai/sdk");
      const sdk = new Anthropic({ apiKey: target.apiKey ?? "", baseURL: target.baseUrl ?? null, maxRetries: 0, timeout: CHECK_TIMEOUT_MS });
      const ids: string[] = [];
      for await (const m of sdk.models.list({ limit: 100 })) ids.push(m.id);
      return ids;
    }
    if (target.provider === "openai") {
      const { default: OpenAI } = await import("openai");
      const sdk = new OpenAI({ apiKey: target.apiKey || "none", baseURL: target.baseUrl ?? null, maxRetries: 0, timeout: CHECK_TIMEOUT_MS });
      const ids: string[] = [];
      for await (const m of sdk.models.list()) ids.push(m.id);
      return ids;
    }
    const { Ollama } = await import("ollama");
    const signal = AbortSignal.timeout(CHECK_TIMEOUT_MS);
    const sdk = new Ollama({ host: target.baseUrl ?? "http://127.0.0.1:11434", fetch: (url, init) => fetch(url, { ...init, signal }) });
    return (await sdk.list()).models.map((m) => m.name);
  } catch (err) {
    const status = (err as { status?: unknown }).status;
    if (typeof status === "number") {
      const what = status === 401 || status === 403 ? "the key was refused" : "the provider answered an error";
      throw new CheckError(`${what} (HTTP ${status})`, status);
    }
    throw new CheckError(`cannot reach ${target.baseUrl ?? `the ${target.provider} API`}: ${errorMessage(err)}`);
  }
}

/**
 * Looks for a local Ollama (`GET <host>/api/tags`, 1.5 s).
 * @returns its model names, or null when nothing answers there
 */
export async function detectOllama(host: string): Promise<string[] | null> {
  try {
    const res = await fetch(new URL("/api/tags", host), { signal: AbortSignal.timeout(1500) });
    if (!res.ok) return null;
    const body = (await res.json()) as { models?: { name?: string }[] };
    return (body.models ?? []).flatMap((m) => (typeof m.name === "string" ? [m.name] : []));
  } catch {
    return null;
  }
}

/** The Bot API's answer envelope (https://core.telegram.org/bots/api#making-requests). */
interface TelegramAnswer<T> {
  ok: boolean;
  result?: T;
  description?: string;
  error_code?: number;
}

async function telegramCall<T>(apiUrl: string, token: string, method: string, body: unknown): Promise<T> {
  let res: Response;
  try {
    res = await fetch(`${apiUrl.replace(/\/+$/, "")}/bot${token}/${method}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(CHECK_TIMEOUT_MS),
    });
  } catch (err) {
    throw new CheckError(`cannot reach ${apiUrl}: ${errorMessage(err)}`);
  }
  const answer = (await res.json().catch(() => ({ ok: false }))) as TelegramAnswer<T>;
  if (!answer.ok || answer.result === undefined) {
    const what = res.status === 401 ? "the bot token was refused" : "Telegram answered an error";
    throw new CheckError(`${what} (HTTP ${res.status}${answer.description ? `: ${answer.description.replaceAll(token, "***")}` : ""})`, res.status);
  }
  return answer.result;
}

/**
 * `getMe`: checks a bot token.
 * @returns the bot's id and @username
 * @throws CheckError (401: token refused)
 */
export async function telegramGetMe(apiUrl: string, token: string): Promise<{ id: number; username: string }> {
  const me = await telegramCall<{ id: number; username?: string }>(apiUrl, token, "getMe", {});
  return { id: me.id, username: me.username ?? String(me.id) };
}

/**
 * Waits for the first private message to the bot (`getUpdates` without an offset, so nothing is
 * confirmed and the gateway still sees it) and returns its sender's id: the operator's own id.
 * @param timeoutMs how long to wait, ms
 * @returns the sender's user id, or null when none arrived in time
 * @throws CheckError when getUpdates fails (e.g. 409: a webhook is set for this bot)
 */
export async function telegramFirstSender(apiUrl: string, token: string, timeoutMs: number, signal?: AbortSignal): Promise<string | null> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until && !signal?.aborted) {
    const updates = await telegramCall<{ message?: { from?: { id?: number }; chat?: { type?: string } } }[]>(apiUrl, token, "getUpdates", {
      timeout: 0,
      allowed_updates: ["message"],
    });
    const from = updates.find((u) => u.message?.chat?.type === "private" && typeof u.message.from?.id === "number")?.message?.from?.id;
    if (from !== undefined) return String(from);
    await new Promise((r) => setTimeout(r, 1000));
  }
  return null;
}
