// Types for discord.mjs, so TypeScript tests can import the fake Discord (no allowJs in tsconfig).

/** One message created through POST /channels/{id}/messages (edits update `content`). */
export interface DiscordSent {
  id: string;
  channel_id: string;
  content: string;
  message_reference?: { message_id: string; fail_if_not_exists?: boolean };
  nonce?: string;
  /** Files uploaded with the message (multipart `files[n]`): filename and Content-Type of each part. */
  attachments?: { filename: string; content_type: string; bytes: Buffer }[];
}

export interface DiscordMessageOptions {
  channelId: string;
  authorId: string;
  content: string;
  /** Absent: a DM. */
  guildId?: string;
  id?: string;
  bot?: boolean;
  type?: number;
  webhookId?: string;
  attachments?: unknown[];
}

export interface FakeDiscord {
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** The plugin's `api_base`. */
  apiBase: string;
  /** The plugin's `gateway_url`. */
  gatewayUrl: string;
  port: number;
  token: string;
  botId: string;
  connections: { url: string; opened: number; closedAt?: number; code?: number }[];
  identifies: any[];
  resumes: any[];
  heartbeats: { at: number; d: any }[];
  calls: { method: string; path: string; headers: any; json: any }[];
  sent: DiscordSent[];
  typing: { channel_id: string; at: number }[];
  edits: { channel_id: string; message_id: string; content: string; at: number }[];
  /** Protocol faults the fake noticed (a request while rate limited, a bad query, an unknown opcode). */
  violations: string[];
  /** Whether heartbeats are acknowledged (op 11); default true. */
  ackHeartbeats: boolean;
  connected(): boolean;
  message(o: DiscordMessageOptions): { id: string; s: number };
  dispatch(t: string, d: unknown): number;
  drop(): void;
  requestReconnect(): void;
  invalidateSession(resumable: boolean): void;
  waitForSent(n: number, timeoutMs?: number): Promise<DiscordSent[]>;
  close(): Promise<void>;
}

export declare function nextSnowflake(): string;
export declare function startFakeDiscord(options?: {
  token?: string;
  heartbeatIntervalMs?: number;
  rateLimit?: { limit: number; resetAfterMs: number };
}): Promise<FakeDiscord>;
