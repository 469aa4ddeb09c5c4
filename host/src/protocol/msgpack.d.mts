// Type declarations for msgpack.mjs (kept by hand; the table of configurations is in that file).

/** One MessagePack configuration: an encoder and a decoder. */
export interface MsgpackConfiguration {
  /** Encodes `value`. @throws Error when it cannot be encoded (a cycle, ...) */
  pack(value: unknown): Uint8Array;
  /** Decodes one value. @throws Error on malformed input (truncated, invalid bytes) */
  unpack(bytes: Uint8Array): unknown;
}

/** WebSocket frames: maps of any size; int64 decoded as number. Decode only what `checkStandardMsgpack` accepted. */
export declare const frameMsgpack: MsgpackConfiguration;
/** Bus payloads: standard types only on encode; int64 decoded as number. */
export declare const busMsgpack: MsgpackConfiguration;
/** Plugin call envelopes and outputs, host function requests and replies: `undefined` encodes as nil, maps decode as objects. */
export declare const pluginEnvelope: MsgpackConfiguration;
/** Plain standard MessagePack: channel plugin inputs (undefined fields removed first), kv files. */
export declare const standardMsgpack: MsgpackConfiguration;
/** Plugin kv files: encodes like `standardMsgpack`, decodes maps as `Map` (keys keep their type). */
export declare const kvFileMsgpack: MsgpackConfiguration;

/**
 * Loads msgpackr's Node entry (its native string extraction speeds up decoding in every unpacker of
 * the thread). Once per thread; never rejects. The gateway calls it once ready.
 */
export declare function loadNativeStrings(): Promise<void>;
