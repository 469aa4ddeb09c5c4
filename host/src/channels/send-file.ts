/**
 * The built-in `send_file` tool (issue 18): the agent sends a photo or document to the peer it is
 * talking with. The target is the session's own channel, account and peer (and the turn's
 * thread), written by the host from the session key: the tool takes no peer, channel or account,
 * and an input naming one is refused, so a prompt injection cannot aim it elsewhere (the agent's
 * outbound allowlist always allows the own peer; `message_send` is the only way to reach others).
 *
 * Where the bytes come from: the model passes them in the call, as `text` (a UTF-8 document:
 * CSV, Markdown, JSON, ...) or as `data_base64` (plain base64 or a `data:<mime>;base64,` URL), size
 * checked before decoding. Never a host path or a URL: the tool reads no file and makes no request,
 * so it cannot be used to exfiltrate host files or reach internal hosts; what it sends is only
 * what the model already had in its context.
 *
 * Limits (per channel, `[channels.<name>.media]`): at most `send_max_bytes` (default 1 MiB, at
 * most 2 MiB, what the plugins' default 16 MiB memory carries while the upload is built) and a type among `send_types`
 * (default JPEG, PNG, GIF, WebP, PDF, plain text, CSV, Markdown, JSON). An image's type is read
 * from its first bytes and must match a declared `mime`; the name is 1..100 characters of
 * `[A-Za-z0-9._ -]` (no path); a caption at most 1,024 characters (Telegram's caption limit).
 */
import type { HostTool, HostToolContext } from "../agent/index.js";
import type { ToolResult, ToolSpec } from "../plugins/index.js";
import { errorMessage } from "../util/index.js";
import { sniffImageType } from "./media.js";
import type { FileSupport, FileTarget } from "./channel.js";
import type { OutboundFile } from "./types.js";

/** Name of the tool. */
export const SEND_FILE = "send_file";

/** Longest caption, characters (Telegram's `caption`: 0-1024; Discord's content allows 2,000). */
export const MAX_CAPTION_CHARS = 1024;

/** A file name the tool accepts: no path separators, no leading dot. */
const NAME_RE = /^[A-Za-z0-9_ -][A-Za-z0-9._ -]{0,99}$/;
const BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/;
const DATA_URL_RE = /^data:([a-z]+\/[a-z0-9.+-]+);base64,/;

/** The JSON schema the model sees. */
export const SEND_FILE_SPEC: ToolSpec = {
  name: SEND_FILE,
  description:
    "Send a file (photo or document) to the person you are talking with, in this conversation. " +
    "Give the file's name and its content: text (for a text document such as CSV, Markdown or JSON) or data_base64 " +
    "(base64, or a data: URL, for binary files such as PNG or PDF). Size and type limits of the channel apply; " +
    "the file always goes to the current conversation.",
  inputSchema: {
    type: "object",
    properties: {
      name: { type: "string", description: "file name shown to the recipient, e.g. report.csv (letters, digits, . _ - and space)" },
      text: { type: "string", description: "the file's content as text (UTF-8); give this or data_base64" },
      data_base64: { type: "string", description: "the file's bytes, base64 or a data:<mime>;base64, URL; give this or text" },
      mime: { type: "string", description: "MIME type, e.g. text/csv or application/pdf; images are recognised from their bytes" },
      caption: { type: "string", description: "text shown with the file (optional)" },
    },
    required: ["name"],
    additionalProperties: false,
  },
};

const err = (content: string): ToolResult => ({ content: `send_file: ${content}`, isError: true });

/** A size for people: `1048576 bytes (1.0 MiB)`. */
const bytesText = (n: number): string => (n >= 1024 * 1024 ? `${n} bytes (${(n / (1024 * 1024)).toFixed(1)} MiB)` : `${n} bytes`);

/**
 * Checks one call's input against a channel's limits and builds the file.
 * @returns the file, or the refusal the model sees (naming the limit that was hit)
 */
export function fileFromInput(input: unknown, limits: { maxBytes: number; types: readonly string[] }): OutboundFile | { error: string } {
  const o = input !== null && typeof input === "object" && !Array.isArray(input) ? (input as Record<string, unknown>) : undefined;
  if (o === undefined) return { error: "input must be an object {name, text | data_base64, mime?, caption?}" };
  for (const k of ["peer", "channel", "account", "thread", "to"]) {
    if (k in o) return { error: `"${k}" is not accepted: a file can only go to the current conversation` };
  }
  const known = new Set(Object.keys(SEND_FILE_SPEC.inputSchema.properties as object));
  const extra = Object.keys(o).find((k) => !known.has(k));
  if (extra !== undefined) return { error: `unknown field "${extra.slice(0, 40)}"` };
  if (typeof o.name !== "string" || !NAME_RE.test(o.name))
    return { error: "name must be 1..100 characters of letters, digits, '.', '_', '-' and space, not starting with '.'" };
  if (o.caption !== undefined && (typeof o.caption !== "string" || o.caption.length > MAX_CAPTION_CHARS)) {
    return { error: `caption must be a string of at most ${MAX_CAPTION_CHARS} characters` };
  }
  if (o.mime !== undefined && (typeof o.mime !== "string" || !/^[a-z]+\/[a-z0-9.+-]+$/.test(o.mime)))
    return { error: 'mime must be a MIME type such as "text/csv"' };
  const hasText = o.text !== undefined;
  const hasData = o.data_base64 !== undefined;
  if (hasText === hasData) return { error: "give exactly one of text and data_base64" };
  const over = (n: number) => ({
    error: `the file is ${bytesText(n)}, over this channel's limit of ${bytesText(limits.maxBytes)} (media.send_max_bytes); nothing was sent`,
  });
  let data: Uint8Array;
  let mime = o.mime as string | undefined;
  if (hasText) {
    if (typeof o.text !== "string") return { error: "text must be a string" };
    // UTF-16 length x 3 bounds the UTF-8 length: refuse a huge string without encoding it first.
    if (o.text.length > limits.maxBytes) return over(o.text.length);
    data = new TextEncoder().encode(o.text);
    mime ??= "text/plain";
  } else {
    if (typeof o.data_base64 !== "string") return { error: "data_base64 must be a string" };
    let b64 = o.data_base64;
    const url = DATA_URL_RE.exec(b64);
    if (url !== null) {
      if (mime !== undefined && mime !== url[1]) return { error: `mime "${mime}" differs from the data: URL's "${url[1]}"` };
      mime = url[1];
      b64 = b64.slice(url[0].length);
    }
    b64 = b64.replace(/\s+/g, "");
    // The decoded size, from the length alone: refused before a byte is decoded.
    const decoded = Math.floor((b64.length * 3) / 4) - (b64.endsWith("==") ? 2 : b64.endsWith("=") ? 1 : 0);
    if (decoded > limits.maxBytes) return over(decoded);
    if (b64.length % 4 !== 0 || !BASE64_RE.test(b64)) return { error: "data_base64 is not valid base64" };
    data = Buffer.from(b64, "base64");
  }
  if (data.length > limits.maxBytes) return over(data.length);
  if (data.length === 0) return { error: "the file is empty" };
  const sniffed = sniffImageType(data);
  if (sniffed !== undefined) {
    if (mime !== undefined && mime !== sniffed) return { error: `the bytes are ${sniffed}, not the declared ${mime}` };
    mime = sniffed;
  } else if (mime === undefined) {
    return { error: "mime is required for a file that is not a JPEG, PNG, GIF or WebP image" };
  } else if (mime.startsWith("image/") && ["image/jpeg", "image/png", "image/gif", "image/webp"].includes(mime)) {
    return { error: `the bytes are not a valid ${mime} file` };
  }
  if (!limits.types.includes(mime)) return { error: `type ${mime} is not one this channel sends (media.send_types: ${limits.types.join(", ")})` };
  return { data, mime, name: o.name, ...(typeof o.caption === "string" && o.caption.length > 0 ? { caption: o.caption } : {}) };
}

/** What the tool needs of the channels service. */
export interface FileChannels {
  fileSupport(channel: string): FileSupport;
  sendFile(target: FileTarget, signal?: AbortSignal): Promise<{ platformMessageId?: string }>;
}

/** Options of {@link sendFileTool}. */
export interface SendFileToolOptions {
  /** The channels service; undefined before it started (a call then fails with a clear error). */
  channels: () => FileChannels | undefined;
  logger: { warn(obj: object, msg: string): void };
}

/** The `send_file` host tool (see the file comment). */
export function sendFileTool(options: SendFileToolOptions): HostTool {
  return {
    spec: SEND_FILE_SPEC,
    available: () => true,
    async call(input: unknown, ctx: HostToolContext, signal?: AbortSignal): Promise<ToolResult> {
      const channels = options.channels();
      if (channels === undefined) return err("channels are not started yet");
      const { channel, account, peer } = ctx.session;
      const support = channels.fileSupport(channel);
      if (!support.ok) return err(`this conversation cannot receive files: ${support.reason}`);
      const file = fileFromInput(input, support);
      if ("error" in file) return err(file.error);
      try {
        const receipt = await channels.sendFile({ channel, account, peer, ...(ctx.thread !== undefined ? { thread: ctx.thread } : {}), file }, signal);
        const id = receipt.platformMessageId !== undefined ? ` (platform message id ${receipt.platformMessageId})` : "";
        return { content: `sent ${file.name} (${file.mime}, ${file.data.length} bytes) to this conversation${id}`, isError: false };
      } catch (e) {
        if (signal?.aborted) throw e;
        const reason = errorMessage(e);
        options.logger.warn({ agent: ctx.agentId, sessionKey: ctx.sessionKey, channel, error: reason }, "send_file failed");
        return err(`could not send ${file.name}: ${reason.slice(0, 300)}`);
      }
    },
  };
}
