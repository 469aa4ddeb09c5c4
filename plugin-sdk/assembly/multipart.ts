// multipart/form-data bodies (RFC 7578) for channel plugins that upload files with the host's
// `http_request` (Telegram sendPhoto / sendDocument, Discord message attachments).
//
// ```ts
// const form = new Multipart();
// form.field("chat_id", "123");
// form.file("photo", "cat.png", "image/png", bytes);
// httpRequest("POST", url, form.headers(), form.finish());
// ```
//
// The boundary is chosen so it occurs in no part (RFC 2046 5.1.1: it must not appear in the
// encapsulated data); it needs no random bytes, so no `random` capability.

/** Builds one multipart/form-data body. Parts are kept until `finish`, which copies them once. */
export class Multipart {
  private names: string[] = [];
  private fileNames: Array<string | null> = [];
  private types: Array<string | null> = [];
  private bodies: Uint8Array[] = [];
  private boundaryText: string = "";

  /** Adds a text field (UTF-8). */
  field(name: string, value: string): Multipart {
    this.push(name, null, null, Uint8Array.wrap(String.UTF8.encode(value)));
    return this;
  }

  /** Adds a file part with `filename` and `Content-Type: mime`. `data` is not copied until `finish`. */
  file(name: string, filename: string, mime: string, data: Uint8Array): Multipart {
    this.push(name, filename, mime, data);
    return this;
  }

  /** The boundary (valid after `finish`). */
  get boundary(): string {
    return this.boundaryText;
  }

  /** `content-type: multipart/form-data; boundary=...` (call after `finish`). */
  headers(): Map<string, string> {
    const h = new Map<string, string>();
    h.set("content-type", "multipart/form-data; boundary=" + this.boundaryText);
    return h;
  }

  /** The body bytes: every part, then the closing boundary. */
  finish(): Uint8Array {
    let n = 0;
    while (true) {
      const b = "exoclaw-form-" + n.toString() + "-7d1f";
      let clash = false;
      for (let i = 0; i < this.bodies.length && !clash; i++) clash = contains(this.bodies[i], b);
      if (!clash) {
        this.boundaryText = b;
        break;
      }
      n++;
    }
    const heads = new Array<Uint8Array>(this.bodies.length);
    let total = 0;
    for (let i = 0; i < this.bodies.length; i++) {
      let h = "--" + this.boundaryText + "\r\nContent-Disposition: form-data; name=\"" + quote(this.names[i]) + "\"";
      const fn = this.fileNames[i];
      if (fn != null) h += "; filename=\"" + quote(fn) + "\"";
      const t = this.types[i];
      if (t != null) h += "\r\nContent-Type: " + t;
      h += "\r\n\r\n";
      heads[i] = Uint8Array.wrap(String.UTF8.encode(h));
      total += heads[i].length + this.bodies[i].length + 2;
    }
    const tail = Uint8Array.wrap(String.UTF8.encode("--" + this.boundaryText + "--\r\n"));
    total += tail.length;
    const out = new Uint8Array(total);
    let at = 0;
    for (let i = 0; i < this.bodies.length; i++) {
      out.set(heads[i], at);
      at += heads[i].length;
      out.set(this.bodies[i], at);
      at += this.bodies[i].length;
      out[at++] = 13;
      out[at++] = 10;
    }
    out.set(tail, at);
    return out;
  }

  private push(name: string, filename: string | null, mime: string | null, data: Uint8Array): void {
    this.names.push(name);
    this.fileNames.push(filename);
    this.types.push(mime);
    this.bodies.push(data);
  }
}

/** A header parameter value with `"`, `\` and line breaks escaped (as browsers do: percent-encoded). */
function quote(s: string): string {
  return s.replaceAll("\"", "%22").replaceAll("\r", "%0D").replaceAll("\n", "%0A");
}

/** Whether the ASCII string `needle` occurs in `hay`. */
function contains(hay: Uint8Array, needle: string): bool {
  const n = needle.length;
  if (n == 0 || hay.length < n) return false;
  const first = <u8>needle.charCodeAt(0);
  for (let i = 0; i <= hay.length - n; i++) {
    if (hay[i] != first) continue;
    let j = 1;
    while (j < n && hay[i + j] == <u8>needle.charCodeAt(j)) j++;
    if (j == n) return true;
  }
  return false;
}
