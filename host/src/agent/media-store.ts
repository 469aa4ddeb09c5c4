/**
 * Inbound images kept for later turns (issue 18): content-addressed files
 * `<stateDir>/media/<sha256>` (directory 0700, files 0600), referenced from the
 * `message_received` event by `{sha256, mime, bytes}` (its `media` field), so a later turn of the
 * session rebuilds the image block instead of seeing only the attachment's metadata line.
 *
 * - Written when the message is journaled (in parallel with the append); a file already there is
 *   not written again (same bytes, same name). A crash between the append and the write leaves a
 *   reference without a file: later turns then show the text placeholder only.
 * - Read back for a turn's history, checked against the reference (size, sha256): a file changed
 *   or removed on disk is skipped, never passed on as something else.
 * - Size-capped: a file over {@link MEDIA_STORE_MAX_BYTES} (the highest `media.max_bytes`) is not
 *   stored.
 * - Retention: each read touches the file's mtime; `pruneIdle(ms)` removes files untouched for
 *   longer (run with `[store] retention`, so media outlives no session idle that long).
 *   Deleting a session (`sessions.delete`, `memory.delete`) removes the files its events name;
 *   an identical image in another session shares the file and loses it too (that session's later
 *   turns show the placeholder).
 */
import { createHash } from "node:crypto";
import { mkdir, readdir, readFile, rm, stat, utimes } from "node:fs/promises";
import path from "node:path";
import type { SessionEvent } from "../store/index.js";
import { writeFileAtomic } from "../util/index.js";
import type { ImageInput } from "./types.js";

/** A stored image as the `message_received` event names it. */
export interface MediaRef {
  /** sha256 of the bytes, lower-case hex (the file's name). */
  sha256: string;
  /** MIME type (sniffed from the bytes when fetched). */
  mime: string;
  /** Size, bytes. */
  bytes: number;
}

/** Largest image stored, bytes (20 MiB: the highest `media.max_bytes` the config accepts). */
export const MEDIA_STORE_MAX_BYTES = 20 * 1024 * 1024;

const HASH_RE = /^[0-9a-f]{64}$/;

/** Logger subset. */
interface MediaLogger {
  warn(obj: object, msg: string): void;
}

/** Options of {@link MediaStore}. */
export interface MediaStoreOptions {
  /** The media directory, `<stateDir>/media`. */
  dir: string;
  /** Per-file cap, bytes; default {@link MEDIA_STORE_MAX_BYTES}. */
  maxBytes?: number;
  logger?: MediaLogger;
}

/** The `media` references of a session's events (each hash once, in order). */
export function mediaRefsOf(events: readonly SessionEvent[]): MediaRef[] {
  // Nothing allocated for a history without images (every turn reads its history's refs).
  let seen: Map<string, MediaRef> | undefined;
  for (const e of events) {
    if (e.kind !== "message_received" || e.data.media === undefined) continue;
    for (const r of e.data.media) if (HASH_RE.test(r.sha256) && !seen?.has(r.sha256)) (seen ??= new Map()).set(r.sha256, r);
  }
  return seen === undefined ? [] : [...seen.values()];
}

/**
 * Deletes a session and then the media files its events name (read before the delete).
 * @returns whether the session existed
 * @throws StoreError as `SessionLog.read` / `delete` (the files are then left)
 */
export async function deleteSessionAndMedia(
  log: { read(sessionKey: string): Promise<SessionEvent[]>; delete(sessionKey: string): Promise<boolean> },
  media: MediaStore | undefined,
  sessionKey: string,
): Promise<boolean> {
  const refs = media !== undefined ? mediaRefsOf(await log.read(sessionKey)) : [];
  const deleted = await log.delete(sessionKey);
  if (deleted && refs.length > 0) await media!.remove(refs.map((r) => r.sha256));
  return deleted;
}

/** The content-addressed media directory (see the file comment). */
export class MediaStore {
  private readonly maxBytes: number;

  constructor(private readonly options: MediaStoreOptions) {
    this.maxBytes = options.maxBytes ?? MEDIA_STORE_MAX_BYTES;
  }

  /** The reference of an image (sha256 of its decoded bytes); undefined when over the cap. */
  ref(img: ImageInput): { ref: MediaRef; bytes: Buffer } | undefined {
    const bytes = Buffer.from(img.data, "base64");
    if (bytes.length > this.maxBytes) return undefined;
    return { ref: { sha256: createHash("sha256").update(bytes).digest("hex"), mime: img.mime, bytes: bytes.length }, bytes };
  }

  /**
   * Writes the bytes under their hash unless already there. Never throws: a failure is logged
   * (the image then lives only in the turn that received it).
   */
  async put(ref: MediaRef, bytes: Uint8Array): Promise<void> {
    const file = this.file(ref.sha256);
    if (file === undefined) return;
    try {
      const st = await stat(file).catch(() => undefined);
      if (st?.size === bytes.length) {
        const now = new Date();
        await utimes(file, now, now).catch(() => {});
        return;
      }
      await mkdir(this.options.dir, { recursive: true, mode: 0o700 });
      await writeFileAtomic(file, bytes, { mode: 0o600, dirMode: 0o700 });
    } catch (err) {
      this.options.logger?.warn(
        { sha256: ref.sha256, error: (err as Error).message },
        "media: could not store an inbound image; later turns get its placeholder",
      );
    }
  }

  /**
   * Reads the images `refs` name, by hash. A missing file, or one whose size or sha256 no longer
   * matches, is left out. Touches each file read (its retention clock).
   */
  async load(refs: readonly MediaRef[]): Promise<Map<string, ImageInput>> {
    const out = new Map<string, ImageInput>();
    await Promise.all(
      refs.map(async (r) => {
        const file = this.file(r.sha256);
        if (file === undefined || r.bytes > this.maxBytes) return;
        let bytes: Buffer;
        try {
          bytes = await readFile(file);
        } catch {
          return;
        }
        if (bytes.length !== r.bytes || createHash("sha256").update(bytes).digest("hex") !== r.sha256) {
          this.options.logger?.warn({ sha256: r.sha256 }, "media: a stored image does not match its reference; left out");
          return;
        }
        const now = new Date();
        await utimes(file, now, now).catch(() => {});
        out.set(r.sha256, { mime: r.mime, data: bytes.toString("base64"), bytes: bytes.length });
      }),
    );
    return out;
  }

  /** Removes the files of `hashes`. @returns how many were removed */
  async remove(hashes: Iterable<string>): Promise<number> {
    let n = 0;
    for (const h of hashes) {
      const file = this.file(h);
      if (file === undefined) continue;
      try {
        await rm(file);
        n++;
      } catch {
        // already gone
      }
    }
    return n;
  }

  /** Removes files not read or written for `idleMs`. @returns how many were removed */
  async pruneIdle(idleMs: number, now = Date.now()): Promise<number> {
    let names: string[];
    try {
      names = await readdir(this.options.dir);
    } catch {
      return 0;
    }
    const old: string[] = [];
    for (const name of names) {
      if (!HASH_RE.test(name)) continue;
      const st = await stat(path.join(this.options.dir, name)).catch(() => undefined);
      if (st !== undefined && now - st.mtimeMs > idleMs) old.push(name);
    }
    return this.remove(old);
  }

  /** The file of a hash; undefined for anything that is not 64 hex digits (never a path). */
  private file(sha256: string): string | undefined {
    return HASH_RE.test(sha256) ? path.join(this.options.dir, sha256) : undefined;
  }
}
