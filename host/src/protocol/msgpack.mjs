// The MessagePack configurations of the host, in one place. Every one writes standard
// MessagePack (`useRecords: false`: no msgpackr record extension, which other decoders would read
// as garbage). They differ where their peers differ; each is named for what it encodes:
//
// | configuration     | used for                                   | encodes undefined as | decodes maps as | int64 as | extension types on decode |
// |-------------------|--------------------------------------------|----------------------|-----------------|----------|---------------------------|
// | `frameMsgpack`    | WebSocket frames (protocol/codec.ts)       | an extension         | objects         | number   | refused first by checkStandardMsgpack (msgpack-check.ts) |
// | `busMsgpack`      | bus payloads (bus/codec.ts)                | an extension         | objects         | number   | accepted                  |
// | `pluginEnvelope`  | plugin calls: tool envelopes, host function requests/replies, plugin outputs (plugins/calls.ts, sandbox worker, `plugin test`) | nil | objects | BigInt | accepted |
// | `standardMsgpack` | channel plugin inputs (undefined fields removed first), plugin kv files | an extension | objects | BigInt | accepted |
// | `kvFileMsgpack`   | reading plugin kv files (sandbox/kv.ts)    | (as standardMsgpack) | `Map`s          | BigInt   | accepted                  |
//
// Plain JavaScript (with msgpack.d.mts) so that the plugin sandbox worker, which runs unbundled
// from the sources in tests, imports it too. It loads msgpackr's pure-JavaScript entry points:
// the package's Node entry loads a native addon (~10 ms per worker start). The gateway loads that
// entry on its main thread once it is ready (`loadNativeStrings`, gateway/app.ts), because its
// native string extraction speeds up decoding in every unpacker of the thread (~10-20 % on
// 0.1-64 KiB payloads); results are the same with or without it. (Loaded here at module
// evaluation, it cost every start ~5-10 ms of main-thread CPU before ready: issue 13.)
import { Packr } from "msgpackr/pack";
import { Unpackr } from "msgpackr/unpack";

/** @type {Promise<void> | undefined} */
let nativeStrings;

/**
 * Loads msgpackr's Node entry, whose native addon (msgpackr-extract) then decodes strings for every
 * unpacker of this thread. Once per thread; never rejects (without the addon, decoding stays in
 * JavaScript, with the same results).
 * @returns {Promise<void>} settled when the entry was loaded or failed to
 */
export function loadNativeStrings() {
  nativeStrings ??= import("msgpackr").then(
    () => {},
    () => {},
  );
  return nativeStrings;
}

/** @param {import("msgpackr").Packr} packr @param {import("msgpackr").Unpackr} unpackr */
function configuration(packr, unpackr) {
  return Object.freeze({
    /** @param {unknown} value */
    pack: (value) => packr.pack(value),
    /** @param {Uint8Array} bytes */
    unpack: (bytes) => unpackr.unpack(bytes),
  });
}

// `variableMapSize`: fixmap/map16/map32 by key count, so objects of any size encode.
export const frameMsgpack = configuration(
  new Packr({ useRecords: false, variableMapSize: true }),
  new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: "number" }),
);

const bus = new Packr({ useRecords: false, moreTypes: false, int64AsType: "number" });
export const busMsgpack = configuration(bus, bus);

export const pluginEnvelope = configuration(
  new Packr({ useRecords: false, encodeUndefinedAsNil: true }),
  new Unpackr({ useRecords: false, mapsAsObjects: true }),
);

const standard = new Packr({ useRecords: false });
export const standardMsgpack = configuration(standard, standard);

export const kvFileMsgpack = configuration(standard, new Unpackr({ useRecords: false, mapsAsObjects: false }));
