// HTML reduced to readable text: scripts, styles and other non-content elements dropped, tags
// stripped (block elements become line breaks, list items "- "), common entities decoded,
// whitespace collapsed.

/** Elements whose content is never text for a reader. */
const SKIP: string[] = ["script", "style", "noscript", "template", "svg", "iframe", "object", "canvas"];
/** Elements that start a new line. */
const BLOCK: string[] = [
  "p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "table", "section", "article", "header",
  "footer", "nav", "aside", "main", "blockquote", "pre", "hr", "dd", "dt", "dl", "figure", "figcaption", "form",
  "fieldset", "address", "details", "summary", "caption", "thead", "tbody", "tfoot", "body", "html",
];

// name;replacement pairs (the most common named entities).
const ENTITIES: string =
  "amp;&|lt;<|gt;>|quot;\"|apos;'|nbsp;\u00a0|ndash;\u2013|mdash;\u2014|hellip;\u2026|copy;\u00a9|reg;\u00ae|trade;\u2122|" +
  "laquo;\u00ab|raquo;\u00bb|lsquo;\u2018|rsquo;\u2019|sbquo;\u201a|ldquo;\u201c|rdquo;\u201d|bdquo;\u201e|bull;\u2022|" +
  "middot;\u00b7|euro;\u20ac|pound;\u00a3|yen;\u00a5|cent;\u00a2|sect;\u00a7|deg;\u00b0|plusmn;\u00b1|times;\u00d7|" +
  "divide;\u00f7|frac12;\u00bd|frac14;\u00bc|frac34;\u00be|para;\u00b6|shy;|ensp; |emsp; |thinsp; |zwnj;|zwj;|" +
  "larr;\u2190|rarr;\u2192|uarr;\u2191|darr;\u2193|harr;\u2194|le;\u2264|ge;\u2265|ne;\u2260|minus;\u2212|" +
  "auml;\u00e4|ouml;\u00f6|uuml;\u00fc|Auml;\u00c4|Ouml;\u00d6|Uuml;\u00dc|szlig;\u00df|eacute;\u00e9|egrave;\u00e8|" +
  "ecirc;\u00ea|aacute;\u00e1|agrave;\u00e0|acirc;\u00e2|iacute;\u00ed|oacute;\u00f3|uacute;\u00fa|ntilde;\u00f1|" +
  "ccedil;\u00e7|Eacute;\u00c9|oslash;\u00f8|aring;\u00e5|iexcl;\u00a1|iquest;\u00bf|prime;\u2032|Prime;\u2033|dagger;\u2020";

let entityNames: Array<string> | null = null;
let entityValues: Array<string> | null = null;

function loadEntities(): void {
  if (entityNames != null) return;
  const names = new Array<string>();
  const values = new Array<string>();
  const pairs = ENTITIES.split("|");
  for (let i = 0; i < pairs.length; i++) {
    const semi = pairs[i].indexOf(";");
    names.push(pairs[i].substring(0, semi + 1));
    values.push(pairs[i].substring(semi + 1));
  }
  entityNames = names;
  entityValues = values;
}

function lowerAscii(c: i32): i32 {
  return c >= 0x41 && c <= 0x5a ? c + 32 : c;
}

/** Index of `needle` (lowercase ASCII) in `s` from `from`, ignoring ASCII case; -1 if absent. */
function indexOfCI(s: string, needle: string, from: i32): i32 {
  const n = needle.length;
  const first = needle.charCodeAt(0);
  for (let i = from; i + n <= s.length; i++) {
    if (lowerAscii(s.charCodeAt(i)) != first) continue;
    let k = 1;
    while (k < n && lowerAscii(s.charCodeAt(i + k)) == needle.charCodeAt(k)) k++;
    if (k == n) return i;
  }
  return -1;
}

function isNameChar(c: i32): bool {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c == 0x2d;
}

/** Decodes `&name;`, `&#123;` and `&#x1F600;`; unknown entities stay as written. */
export function decodeEntities(s: string): string {
  if (!s.includes("&")) return s;
  loadEntities();
  const names = <Array<string>>entityNames;
  const values = <Array<string>>entityValues;
  const parts = new Array<string>();
  let start = 0;
  let i = s.indexOf("&");
  while (i >= 0) {
    const semi = s.indexOf(";", i);
    if (semi < 0 || semi - i > 12) {
      i = s.indexOf("&", i + 1);
      continue;
    }
    let replacement: string | null = null;
    if (s.charCodeAt(i + 1) == 0x23) {
      const hex = s.charCodeAt(i + 2) == 0x78 || s.charCodeAt(i + 2) == 0x58;
      const digits = s.substring(i + (hex ? 3 : 2), semi);
      let cp: i64 = 0;
      let ok = digits.length > 0;
      for (let k = 0; k < digits.length && ok; k++) {
        const c = lowerAscii(digits.charCodeAt(k));
        let d: i32 = -1;
        if (c >= 0x30 && c <= 0x39) d = c - 0x30;
        else if (hex && c >= 0x61 && c <= 0x66) d = c - 0x61 + 10;
        if (d < 0) ok = false;
        else cp = cp * (hex ? 16 : 10) + d;
        if (cp > 0x10ffff) ok = false;
      }
      if (ok && cp > 0 && !(cp >= 0xd800 && cp <= 0xdfff)) replacement = String.fromCodePoint(<i32>cp);
    } else {
      const name = s.substring(i + 1, semi + 1);
      for (let k = 0; k < names.length; k++) {
        if (names[k] == name) {
          replacement = values[k];
          break;
        }
      }
    }
    if (replacement != null) {
      parts.push(s.substring(start, i));
      parts.push(replacement);
      start = semi + 1;
      i = s.indexOf("&", start);
    } else {
      i = s.indexOf("&", i + 1);
    }
  }
  parts.push(s.substring(start));
  return parts.join("");
}

/** Collapses runs of spaces and tabs, trims lines, and keeps at most one empty line in a row. */
export function collapseWhitespace(s: string): string {
  const lines = s.replaceAll("\r\n", "\n").replaceAll("\r", "\n").split("\n");
  const out = new Array<string>();
  let blank = true; // no empty lines at the start
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const parts = new Array<string>();
    let word = -1;
    for (let k = 0; k <= line.length; k++) {
      const c = k < line.length ? line.charCodeAt(k) : 0x20;
      const space = c == 0x20 || c == 0x09 || c == 0xa0 || c == 0x0c || c == 0x0b;
      if (space) {
        if (word >= 0) {
          parts.push(line.substring(word, k));
          word = -1;
        }
      } else if (word < 0) {
        word = k;
      }
    }
    const collapsed = parts.join(" ");
    if (collapsed.length == 0) {
      if (!blank) out.push("");
      blank = true;
    } else {
      out.push(collapsed);
      blank = false;
    }
  }
  while (out.length > 0 && out[out.length - 1].length == 0) out.pop();
  return out.join("\n");
}

/** Readable text of an HTML document, and its <title>. */
export class HtmlText {
  title: string = "";
  text: string = "";
}

/** Reduces HTML to text (see the file comment). Linear in the input; never fails. */
export function htmlToText(html: string): HtmlText {
  const out = new HtmlText();
  const parts = new Array<string>();
  const n = html.length;
  let i = 0;
  while (i < n) {
    const lt = html.indexOf("<", i);
    if (lt < 0) {
      parts.push(html.substring(i));
      break;
    }
    if (lt > i) parts.push(html.substring(i, lt));
    i = lt;
    if (html.startsWith("<!--", i)) {
      const end = html.indexOf("-->", i + 4);
      i = end < 0 ? n : end + 3;
      continue;
    }
    const next = i + 1 < n ? html.charCodeAt(i + 1) : 0;
    if (next == 0x21 || next == 0x3f) {
      const end = html.indexOf(">", i);
      i = end < 0 ? n : end + 1;
      continue;
    }
    const closing = next == 0x2f;
    let k = i + (closing ? 2 : 1);
    const nameStart = k;
    while (k < n && isNameChar(html.charCodeAt(k))) k++;
    if (k == nameStart) {
      // "<" that starts no tag ("a < b"): keep it as text.
      parts.push("<");
      i++;
      continue;
    }
    const name = html.substring(nameStart, k).toLowerCase();
    const end = html.indexOf(">", k);
    if (end < 0) break;
    i = end + 1;
    if (closing) {
      // Each <li> starts its own line, so </li> adds none (no blank lines inside lists).
      if (name != "li" && BLOCK.includes(name)) parts.push("\n");
      continue;
    }
    if (name == "title") {
      const close = indexOfCI(html, "</title", i);
      if (out.title.length == 0) out.title = collapseWhitespace(decodeEntities(html.substring(i, close < 0 ? n : close)));
      const gt = close < 0 ? -1 : html.indexOf(">", close);
      i = gt < 0 ? n : gt + 1;
      continue;
    }
    if (SKIP.includes(name) && html.charCodeAt(end - 1) != 0x2f) {
      const close = indexOfCI(html, "</" + name, i);
      const gt = close < 0 ? -1 : html.indexOf(">", close);
      i = gt < 0 ? n : gt + 1;
      continue;
    }
    if (name == "li") parts.push("\n- ");
    else if (name == "td" || name == "th") parts.push(" ");
    else if (BLOCK.includes(name)) parts.push("\n");
  }
  out.text = collapseWhitespace(decodeEntities(parts.join("")));
  return out;
}
