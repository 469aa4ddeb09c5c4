// Types for telegram.mjs, so TypeScript tests can import the fake Telegram (no allowJs in tsconfig).
import type { IncomingHttpHeaders } from "node:http";

/** One Bot API request the fake received. */
export interface TelegramCall {
  /** The Bot API method (sendMessage, getUpdates, ...). */
  method: string;
  /** The token from the path. */
  token: string;
  json: any;
  headers: IncomingHttpHeaders;
}

/** One accepted sendMessage. */
export interface TelegramSent {
  chat_id: number | string;
  text: string;
  message_thread_id: number | undefined;
  reply_parameters: any;
  /** The id the fake assigned. */
  message_id: number;
  /** deleteMessage was called for it. */
  deleted?: boolean;
}

/** One accepted sendPhoto / sendDocument: the form's fields and the uploaded file. */
export interface TelegramFileSent {
  method: "sendPhoto" | "sendDocument" | string;
  chat_id: string;
  caption: string | undefined;
  message_thread_id: string | undefined;
  /** The file part's filename and Content-Type. */
  name: string;
  type: string;
  bytes: Buffer;
  message_id: number;
}

export interface TelegramUpdateOptions {
  chatId: number;
  text?: string;
  caption?: string;
  chatType?: "private" | "group" | "supergroup" | "channel";
  fromId?: number;
  messageId?: number;
  updateId?: number;
  threadId?: number;
  field?: "message" | "edited_message" | "channel_post" | "edited_channel_post";
  editDate?: number;
  extra?: Record<string, unknown>;
}

/** A Telegram Update object ({update_id, message | edited_message | channel_post | ...}). */
export type TelegramUpdate = { update_id: number; [field: string]: any };

export declare function telegramUpdate(o: TelegramUpdateOptions): TelegramUpdate;
export declare function deliverTelegramUpdate(url: string, update: unknown, secretToken: string | undefined): Promise<{ status: number; body: string }>;

export interface FakeTelegram {
  /** Bot API base URL, e.g. "http://127.0.0.1:43123": the plugin's `base_url`. */
  url: string;
  port: number;
  token: string;
  calls: TelegramCall[];
  sent: TelegramSent[];
  /** sendChatAction calls, in order (`at`: Date.now() when received). */
  typing: { chat_id: number | string; action: string; message_thread_id?: number; at: number }[];
  /** Accepted editMessageText calls, in order (`text` is the message's new text; `sent` shows it too). */
  edits: { chat_id: number | string; message_id: number; text: string; at: number }[];
  /** Every editMessageText call with its HTTP status (200, 400, 429). */
  editAttempts: { chat_id: number | string; message_id: number; at: number; status: number }[];
  /** While `down`, editMessageText answers 500 "Internal Server Error". */
  failEdits(down: boolean): void;
  /** Marks a sent message deleted: editMessageText then answers "message to edit not found". */
  deleteMessage(messageId: number): void;
  /** File downloads received (GET /file/bot<token>/<path>). */
  downloads: { token: string; path: string }[];
  /** Files received by sendPhoto / sendDocument (multipart/form-data), in order. */
  filesSent: TelegramFileSent[];
  /** Resolves once at least `n` files were sent; rejects after `timeoutMs` (default 30 000). */
  waitForFiles(n: number, timeoutMs?: number): Promise<TelegramFileSent[]>;
  /** Stores a file bots can fetch with getFile + GET /file/...; returns its file_id. */
  addFile(bytes: Uint8Array, name?: string): string;
  /** Queues an Update for getUpdates. */
  enqueue(update: TelegramUpdate): void;
  /** Updates not yet confirmed by an offset. */
  pending(): TelegramUpdate[];
  /** The next sendMessage (or sendPhoto / sendDocument) fails with this error_code (HTTP status) and description. */
  failNextSend(code: number, description: string): void;
  /** Resolves once at least `n` messages were sent; rejects after `timeoutMs` (default 30 000). */
  waitForSent(n: number, timeoutMs?: number): Promise<TelegramSent[]>;
  reset(): void;
  close(): Promise<void>;
}

export declare function startFakeTelegram(options?: {
  token?: string;
  /** Edits of one chat allowed per window; more get 429 with retry_after 1. */
  rate?: { edits: number; perMs: number };
}): Promise<FakeTelegram>;
