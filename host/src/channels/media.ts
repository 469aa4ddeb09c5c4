/**
 * Inbound images for the model (issue 18): the host downloads an image attachment whose plugin
 * gave a `fetch` request, under that plugin's `http` grant (hosts and methods checked on every
 * redirect hop, `{{secret:NAME}}` substituted host-side, the body capped at the channel's
 * `media.max_bytes`), checks its type from its first bytes against `media.types`, and hands it to
 * the turn as base64. An image over the limit refuses the whole message with a reply naming the
 * limit; one that cannot be fetched or is of another type stays a text placeholder.
 */
import type { ImageInput } from "../agent/index.js";
import type { ChannelGroups } from "../config/index.js";
import { DEFAULT_MEDIA_MAX_BYTES, DEFAULT_MEDIA_TYPES } from "../config/index.js";
import { errorMessage } from "../util/index.js";
import type { Attachment, AttachmentFetch } from "./types.js";

/** Downloads bytes on a channel plugin's behalf (PluginHost.fetchAsChannel). */
export type ChannelFetch = (
  plugin: string,
  request: AttachmentFetch,
  maxBytes: number,
  signal: AbortSignal,
) => Promise<{ status: number; headers: Record<string, string>; body: Uint8Array }>;

/** How long the image downloads of one message may take together, ms (the platform's webhook answer waits for them). */
export const MEDIA_FETCH_TIMEOUT_MS = 20_000;

/** What the images of one message came to. */
export type MediaOutcome =
  | { kind: "ok"; images: ImageInput[]; notes: string[] }
  /** An image over `media.max_bytes`: the message is refused with `reply`. */
  | { kind: "oversized"; reply: string; bytes?: number; limit: number };

/** The MIME type of image bytes from their signature (JPEG, PNG, GIF, WebP), or undefined. */
export function sniffImageType(b: Uint8Array): string | undefined {
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return "image/jpeg";
  if (b.length >= 8 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47) return "image/png";
  if (b.length >= 4 && b[0] === 0x47 && b[1] === 0x49 && b[2] === 0x46 && b[3] === 0x38) return "image/gif";
  if (b.length >= 12 && String.fromCharCode(...b.subarray(0, 4)) === "RIFF" && String.fromCharCode(...b.subarray(8, 12)) === "WEBP") return "image/webp";
  return undefined;
}

const isImage = (a: Attachment): boolean => a.kind === "image" || a.kind === "photo" || (a.mime?.startsWith("image/") ?? false);

/** The refusal of an oversized image. */
export function oversizedReply(limit: number, bytes?: number): string {
  const mib = (n: number) => (n >= 1024 * 1024 ? `${(n / (1024 * 1024)).toFixed(1)} MiB` : `${n} bytes`);
  return `Your image is too large${bytes !== undefined ? ` (${mib(bytes)})` : ""}; the limit is ${limit} bytes (${mib(limit)}). It was not passed on.`;
}

/**
 * Fetches the images of a message's attachments.
 * @param fetch the plugin host's download; absent = no image is fetched (placeholders only)
 */
export async function fetchImages(options: {
  plugin: string;
  attachments: readonly Attachment[];
  groups: ChannelGroups | undefined;
  fetch: ChannelFetch | undefined;
  signal?: AbortSignal;
}): Promise<MediaOutcome> {
  const maxBytes = options.groups?.media.maxBytes ?? DEFAULT_MEDIA_MAX_BYTES;
  const types = options.groups?.media.types ?? DEFAULT_MEDIA_TYPES;
  const images: ImageInput[] = [];
  const notes: string[] = [];
  let signal: AbortSignal | undefined;
  for (const a of options.attachments) {
    if (!isImage(a)) continue;
    if (a.size !== undefined && a.size > maxBytes) return { kind: "oversized", reply: oversizedReply(maxBytes, a.size), bytes: a.size, limit: maxBytes };
    if (a.fetch === undefined || options.fetch === undefined) continue;
    signal ??= AbortSignal.any([AbortSignal.timeout(MEDIA_FETCH_TIMEOUT_MS), ...(options.signal ? [options.signal] : [])]);
    let res: { status: number; body: Uint8Array };
    try {
      res = await options.fetch(options.plugin, a.fetch, maxBytes, signal);
    } catch (err) {
      const m = errorMessage(err);
      if (/over the \d+-byte limit|bytes, over the/.test(m)) {
        const declared = /response body is (\d+) bytes/.exec(m);
        return { kind: "oversized", reply: oversizedReply(maxBytes, declared ? Number(declared[1]) : undefined), limit: maxBytes };
      }
      notes.push(`${a.name ?? "image"}: could not be fetched (${m.slice(0, 200)})`);
      continue;
    }
    if (res.status < 200 || res.status > 299) {
      notes.push(`${a.name ?? "image"}: could not be fetched (HTTP ${res.status})`);
      continue;
    }
    const mime = sniffImageType(res.body);
    if (mime === undefined || !types.includes(mime)) {
      notes.push(`${a.name ?? "image"}: not given to the model (type ${mime ?? "unknown"} is not one of ${types.join(", ")})`);
      continue;
    }
    images.push({ mime, data: Buffer.from(res.body).toString("base64"), bytes: res.body.length });
  }
  return { kind: "ok", images, notes };
}
