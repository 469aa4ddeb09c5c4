// Small dependency-free helpers shared by every layer of host/src (they import nothing of the
// host, so any folder may use them without reaching up the layer order).
export { errorMessage } from "./error-message.mjs";
export { KeyedChain } from "./keyed-chain.js";
export { percentile } from "./percentile.js";
export { sleep } from "./sleep.js";
export { escapeToken, unescapeToken, SubjectError } from "./subject-token.js";
export { watchFiles, type FileWatch, type WatchFilesOptions } from "./watch-files.js";
export { parseDuration, DURATION_HINT } from "./duration.js";
export { writeFileAtomic, type AtomicWriteOptions } from "./atomic-file.js";
export { isIPv6 } from "./ip.js";
export { readWholeFile } from "./read-whole.js";
