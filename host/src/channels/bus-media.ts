/**
 * Inbound images over the bus (docs/bus.md, "Images across gateways"): the gateway that
 * received a channel message fetched its images (media.ts); the gateway that consumes it from
 * the `in` stream needs them for the model request. They travel with the message:
 * - inline, as MessagePack binary in the payload, while all of one message's images together
 *   are at most {@link INLINE_IMAGE_BYTES} (the payload must stay under the bus's 1 MiB
 *   `max_payload`; this also works while NATS is down and the message waits in the disk spool);
 * - otherwise in the JetStream Object Store bucket {@link MEDIA_BUCKET}, named by the bytes'
 *   SHA-256 (the same image twice is stored once), kept {@link MEDIA_TTL_MS}; the payload holds
 *   the name. Storing needs NATS: while it is down such a message is not accepted (the platform
 *   redelivers it), never passed on without its image.
 *
 * Wire shape (payload field `images`, version 1): `[{mime, bytes, data?: bin, object?: string}]`.
 */
import { createHash } from "node:crypto";
import type { ImageInput } from "../agent/index.js";

/** Most image bytes inline in one bus message (all its images together). */
export const INLINE_IMAGE_BYTES = 512 * 1024;
/** Object Store bucket of larger images. */
export const MEDIA_BUCKET = "exoclaw_media";
/** How long a stored image is kept, ms (past any redelivery or dead-letter replay window that matters). */
export const MEDIA_TTL_MS = 7 * 24 * 60 * 60 * 1000;

/** One image in an inbound bus payload. */
export interface BusImage {
  /** image/jpeg, image/png, image/gif or image/webp (sniffed at intake). */
  mime: string;
  /** Size of the bytes. */
  bytes: number;
  /** The bytes, when inline. */
  data?: Uint8Array;
  /** Object Store name (`sha256-<hex>`), when stored. */
  object?: string;
}

/** Where images too large to go inline are kept (NATS Object Store; media-objects.ts). */
export interface MediaObjects {
  /** Stores `bytes` under `name` (idempotent). @throws Error when NATS cannot be reached */
  put(name: string, bytes: Uint8Array): Promise<void>;
  /** The bytes under `name`, or null when gone. @throws Error when NATS cannot be reached */
  get(name: string): Promise<Uint8Array | null>;
}

/**
 * The `images` field of a message's payload.
 * @param objects where large images go; undefined (in-process bus) = always inline
 * @throws Error when a large image cannot be stored (the message is then not accepted)
 */
export async function packImages(images: readonly ImageInput[], objects: MediaObjects | undefined): Promise<BusImage[]> {
  const total = images.reduce((n, i) => n + i.bytes, 0);
  const inline = objects === undefined || total <= INLINE_IMAGE_BYTES;
  const out: BusImage[] = [];
  for (const img of images) {
    const data = Buffer.from(img.data, "base64");
    if (inline) {
      out.push({ mime: img.mime, bytes: data.length, data });
      continue;
    }
    const object = `sha256-${createHash("sha256").update(data).digest("hex")}`;
    await objects.put(object, data);
    out.push({ mime: img.mime, bytes: data.length, object });
  }
  return out;
}

/** Checks a decoded `images` field (another process wrote it). @returns the images or why it is malformed */
export function checkBusImages(v: unknown): BusImage[] | string {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) return "field 'images' is not an array";
  for (const [i, x] of v.entries()) {
    const m = x as Partial<BusImage> | null;
    if (typeof m !== "object" || m === null || typeof m.mime !== "string" || typeof m.bytes !== "number") return `images[${i}] is not {mime, bytes}`;
    if (!(m.data instanceof Uint8Array) && typeof m.object !== "string") return `images[${i}] has neither data nor object`;
  }
  return v as BusImage[];
}

/**
 * The turn's images from a payload's `images`.
 * @throws Error when a stored image cannot be read (NATS down: the bus retries the message) or is gone
 */
export async function unpackImages(images: readonly BusImage[], objects: MediaObjects | undefined): Promise<ImageInput[]> {
  const out: ImageInput[] = [];
  for (const img of images) {
    let bytes: Uint8Array | null | undefined = img.data;
    if (bytes === undefined) {
      if (objects === undefined) throw new Error(`image ${img.object} is in the NATS object store, which this bus does not have`);
      bytes = await objects.get(img.object!);
      if (bytes === null) throw new Error(`image ${img.object} is no longer in the NATS object store ${MEDIA_BUCKET}`);
    }
    out.push({ mime: img.mime, data: Buffer.from(bytes).toString("base64"), bytes: bytes.length });
  }
  return out;
}
