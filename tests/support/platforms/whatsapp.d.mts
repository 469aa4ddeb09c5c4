// Types for whatsapp.mjs, so TypeScript tests can import the fake WhatsApp Cloud API.
import type { IncomingHttpHeaders } from "node:http";

export interface WhatsAppCall {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  json: any;
}

/** One accepted send. */
export interface WhatsAppSent {
  /** From the URL path. */
  phoneNumberId: string;
  /** e.g. "v21.0". */
  version: string;
  to: string;
  /** text.body */
  body: string;
  /** context.message_id */
  replyTo: string | undefined;
  /** The wamid the fake assigned (the plugin's receipt). */
  id: string;
  json: any;
}

/** One media upload. */
export interface WhatsAppUpload {
  /** The media id the fake assigned. */
  id: string;
  /** The form's `type` field (MIME). */
  type: string;
  /** The file part's filename. */
  name: string;
  bytes: Buffer;
  messagingProduct: string | undefined;
}

/** One media message (image or document by media id). */
export interface WhatsAppFileSent {
  kind: "image" | "document";
  to: string;
  mediaId: string;
  caption?: string;
  filename?: string;
  upload: WhatsAppUpload | undefined;
  /** The message's wamid. */
  id: string;
}

export interface FakeWhatsApp {
  /** Graph base URL, e.g. "http://127.0.0.1:43123": the plugin's `base_url`. */
  url: string;
  port: number;
  token: string;
  appSecret: string;
  verifyToken: string;
  phoneNumberId: string;
  calls: WhatsAppCall[];
  sent: WhatsAppSent[];
  /** Media uploaded (`POST /<version>/<phone_number_id>/media`, multipart). */
  uploads: WhatsAppUpload[];
  /** Media messages sent (`type` image or document), with the upload they refer to. */
  filesSent: WhatsAppFileSent[];
  /** The next send answers HTTP 400 `{error: {message, code}}`. */
  failNext(message: string, code?: number): void;
  waitForSent(n: number, timeoutMs?: number): Promise<WhatsAppSent[]>;
  /** POSTs a notification to `webhookUrl` as Meta does (signed with the app secret). */
  deliver(
    webhookUrl: string,
    payload: unknown,
    options?: { appSecret?: string; signature?: string; unsigned?: boolean },
  ): Promise<{ status: number; body: string }>;
  /** The GET verification handshake. */
  verify(webhookUrl: string, options?: { verifyToken?: string; challenge?: string; mode?: string }): Promise<{ status: number; body: string }>;
  reset(): void;
  close(): Promise<void>;
}

export function signWhatsAppBody(appSecret: string, body: string | Buffer): string;
export function whatsappMessage(o: { phoneNumberId: string; from: string; text?: string; id?: string; name?: string; message?: Record<string, unknown> }): any;
export function whatsappStatus(o: { phoneNumberId: string; recipient: string; messageId?: string; status?: "sent" | "delivered" | "read" | "failed" }): any;
export function startFakeWhatsApp(options?: { token?: string; appSecret?: string; verifyToken?: string; phoneNumberId?: string }): Promise<FakeWhatsApp>;
