/**
 * `[gateway.tls]`: the certificate and key the gateway serves wss:// and https:// with. Both
 * files are checked together before the gateway listens (readable, PEM, the key belongs to the
 * certificate), and again whenever either changes: a good pair replaces the served one for new
 * connections, a bad one is logged and the running pair stays.
 */
import { readFileSync } from "node:fs";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { createRequire } from "node:module";
import type { Logger } from "pino";
import type { TlsFiles } from "../config/index.js";
import { errorMessage, watchFiles, type FileWatch } from "../util/index.js";

/** A checked certificate chain and key, PEM bytes, as `https.createServer` takes them. */
export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  /** The leaf certificate's fingerprint (SHA-256, `AA:BB:...`) and expiry, for the log. */
  fingerprint256: string;
  validTo: string;
}

/** A `[gateway.tls]` file that cannot be used; the message names the key and the file. */
export class TlsConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TlsConfigError";
  }
}

function read(what: "cert" | "key", file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new TlsConfigError(`[gateway.tls] ${what}: cannot read ${file} (${errorMessage(err)})`);
  }
}

/**
 * Reads and checks the pair: both files readable, `cert` a PEM certificate (chain), `key` an
 * unencrypted PEM private key that matches the first certificate.
 * @throws TlsConfigError naming `[gateway.tls] cert` or `key` and the file: unreadable,
 *   missing, not PEM, encrypted key, or the key does not match the certificate
 */
export function readTlsFiles(files: TlsFiles): TlsMaterial {
  const cert = read("cert", files.certFile);
  const key = read("key", files.keyFile);
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (err) {
    throw new TlsConfigError(`[gateway.tls] cert: ${files.certFile} is not a PEM certificate (${errorMessage(err)})`);
  }
  let privateKey: ReturnType<typeof createPrivateKey>;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    throw new TlsConfigError(`[gateway.tls] key: ${files.keyFile} is not an unencrypted PEM private key (${errorMessage(err)})`);
  }
  if (!x509.checkPrivateKey(privateKey)) {
    throw new TlsConfigError(
      `[gateway.tls] key: ${files.keyFile} does not match the certificate in ${files.certFile} (subject ${x509.subject.replace(/\n/g, ", ")})`,
    );
  }
  try {
    // node:tls loads only here, with [gateway.tls]: a start without TLS does not compile it.
    (createRequire(import.meta.url)("node:tls") as typeof import("node:tls")).createSecureContext({ cert, key });
  } catch (err) {
    throw new TlsConfigError(`[gateway.tls] cert ${files.certFile} and key ${files.keyFile} cannot be used together (${errorMessage(err)})`);
  }
  return { cert, key, fingerprint256: x509.fingerprint256, validTo: x509.validTo };
}

/**
 * Watches both files (see `watchFiles`: the directories, debounced, plus a stat poll) and calls
 * `apply` with each new pair that passes {@link readTlsFiles}. A pair that does not (a half
 * renewed certificate, a key written before its certificate) is logged at error and skipped;
 * the served pair stays until a good one arrives.
 */
export function watchTlsFiles(files: TlsFiles, current: TlsMaterial, apply: (material: TlsMaterial) => void, logger: Logger): FileWatch {
  let served = current.fingerprint256 + current.key.toString("base64");
  return watchFiles([files.certFile, files.keyFile], () => {
    let next: TlsMaterial;
    try {
      next = readTlsFiles(files);
    } catch (err) {
      logger.error(
        { cert: files.certFile, key: files.keyFile, error: errorMessage(err) },
        "TLS files changed but cannot be used; still serving the previous certificate",
      );
      return;
    }
    const id = next.fingerprint256 + next.key.toString("base64");
    if (id === served) return;
    served = id;
    apply(next);
    logger.info({ cert: files.certFile, fingerprint256: next.fingerprint256, validTo: next.validTo }, "TLS certificate reloaded: new connections get it");
  });
}
