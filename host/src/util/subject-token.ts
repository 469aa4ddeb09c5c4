/**
 * Subject token escaping (docs/bus.md, "Subjects"): every variable token of a NATS subject is
 * escaped so that no id can forge another subject or a wildcard: bytes outside printable ASCII
 * `!`..`~`, and `.`, `*`, `>`, `%`, are written as `%XX` (upper-case hex of their UTF-8 bytes); the
 * empty string is written `%`. The scheme is injective. Used by the bus (`bus/subjects.ts`) and by
 * the JetStream session log (`store/jetstream-store.ts`); imports nothing of the host.
 */
/** Thrown for ids that cannot be encoded and for strings that are not exoclaw subjects. */
export class SubjectError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SubjectError";
  }
}

const HEX = "0123456789ABCDEF";
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const encoder = new TextEncoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true });

/** True for bytes that stand for themselves in an escaped token. */
function isPlain(byte: number): boolean {
  // printable ASCII except the separator, the wildcards and the escape character itself
  return byte >= 0x21 && byte <= 0x7e && byte !== 0x2e /* . */ && byte !== 0x2a /* * */ && byte !== 0x3e /* > */ && byte !== 0x25 /* % */;
}

/**
 * Escapes one subject token. Injective: `unescapeToken(escapeToken(s)) === s` for every
 * well-formed string, and distinct inputs give distinct outputs.
 * @throws SubjectError for a string with unpaired UTF-16 surrogates (it has no UTF-8 form)
 */
export function escapeToken(token: string): string {
  if (token === "") return "%";
  if (LONE_SURROGATE.test(token)) throw new SubjectError(`subject token has unpaired surrogates: ${JSON.stringify(token)}`);
  let out = "";
  let plainRun = true;
  for (let i = 0; i < token.length; i++) {
    const c = token.charCodeAt(i);
    if (c >= 0x80 || !isPlain(c)) {
      plainRun = false;
      break;
    }
  }
  if (plainRun) return token;
  for (const byte of encoder.encode(token)) {
    if (isPlain(byte)) out += String.fromCharCode(byte);
    else out += "%" + HEX[byte >> 4] + HEX[byte & 15];
  }
  return out;
}

/**
 * Reverses {@link escapeToken}.
 * @throws SubjectError when `escaped` is not an output of `escapeToken` (bad escape, a raw
 *   special character, or bytes that are not UTF-8)
 */
export function unescapeToken(escaped: string): string {
  if (escaped === "%") return "";
  if (escaped === "") throw new SubjectError("empty subject token");
  const bytes: number[] = [];
  for (let i = 0; i < escaped.length; i++) {
    const c = escaped.charCodeAt(i);
    if (c === 0x25) {
      const hex = escaped.slice(i + 1, i + 3);
      if (!/^[0-9A-F]{2}$/.test(hex)) throw new SubjectError(`bad escape in subject token ${JSON.stringify(escaped)}`);
      const byte = parseInt(hex, 16);
      // a byte that escapeToken writes plain must not appear escaped (keeps the scheme a bijection)
      if (isPlain(byte)) throw new SubjectError(`needless escape in subject token ${JSON.stringify(escaped)}`);
      bytes.push(byte);
      i += 2;
    } else if (c < 0x80 && isPlain(c)) {
      bytes.push(c);
    } else {
      throw new SubjectError(`raw special character in subject token ${JSON.stringify(escaped)}`);
    }
  }
  try {
    return strictDecoder.decode(new Uint8Array(bytes));
  } catch {
    throw new SubjectError(`subject token is not UTF-8: ${JSON.stringify(escaped)}`);
  }
}
