// Editing exoclaw.toml in place. smol-toml parses and writes TOML but keeps no comments, and the
// example file is mostly comments: a set rewrites only the line of the key (or inserts one line
// under its table), then re-parses the result and checks that exactly the intended value changed.
// When the text edit cannot express the change (the key sits in an inline table, a dotted key
// spans tables, ...), the file is rewritten from the parsed data and the comments are lost; the
// caller is told (`keptComments: false`).
import { parse as parseToml, stringify as stringifyToml } from "smol-toml";

type TomlTable = Record<string, unknown>;

/** A key path: table names and keys, with array-of-tables indices as numbers (`["agents", 0, "model"]`). */
export type KeyPath = (string | number)[];

/**
 * Parses `a.b.0.c` (numbers index arrays of tables, e.g. `agents.0.model`); quoted segments
 * (`plugins.grants."my-plugin".http`) keep their dots.
 * @throws Error for an empty path or segment
 */
export function parseKeyPath(dotted: string): KeyPath {
  const out: KeyPath = [];
  const re = /\s*(?:"([^"]*)"|([^.\s"]+))\s*(?:\.|$)/y;
  let at = 0;
  while (at < dotted.length) {
    re.lastIndex = at;
    const m = re.exec(dotted);
    if (!m) throw new Error(`"${dotted}" is not a key path like gateway.port or agents.0.model`);
    const seg = m[1] ?? m[2]!;
    out.push(m[1] === undefined && /^\d+$/.test(seg) ? Number(seg) : seg);
    at = re.lastIndex;
  }
  if (out.length === 0 || out.some((s) => s === "")) throw new Error(`"${dotted}" is not a key path like gateway.port or agents.0.model`);
  return out;
}

/** `["agents", 0, "model"]` -> `agents.0.model`. */
export function formatKeyPath(path: KeyPath): string {
  return path.map((s) => (typeof s === "number" || /^[A-Za-z0-9_-]+$/.test(s) ? String(s) : JSON.stringify(s))).join(".");
}

/** The value at `path` in parsed TOML data, or undefined. */
export function getPath(data: unknown, path: KeyPath): unknown {
  let cur: unknown = data;
  for (const seg of path) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string | number, unknown>)[seg];
  }
  return cur;
}

/**
 * A deep copy of `data` with `path` set to `value` (intermediate tables created; an array index
 * one past the end appends a table).
 * @throws Error when the path runs through a value that is not a table, or an index beyond the end
 */
export function setPath(data: TomlTable, path: KeyPath, value: unknown): TomlTable {
  const root = structuredClone(data);
  let cur: Record<string | number, unknown> = root;
  for (const [i, seg] of path.entries()) {
    const last = i === path.length - 1;
    if (Array.isArray(cur) && (typeof seg !== "number" || seg > cur.length)) throw new Error(`${formatKeyPath(path.slice(0, i + 1))}: no such array entry`);
    if (last) {
      cur[seg] = value;
      break;
    }
    const next = cur[seg];
    if (next === undefined) cur[seg] = typeof path[i + 1] === "number" ? [] : {};
    else if (next === null || typeof next !== "object") throw new Error(`${formatKeyPath(path.slice(0, i + 1))} is a value, not a table`);
    cur = cur[seg] as Record<string | number, unknown>;
  }
  return root;
}

/** A TOML value as it is written after `key = ` (smol-toml's own spelling). */
export function renderTomlValue(value: unknown): string {
  return stringifyToml({ v: value }).trim().replace(/^v = /, "");
}

interface Header {
  /** Line index. */
  line: number;
  /** The table's key path, array-of-tables entries with their index. */
  path: KeyPath;
}

/** A header line's dotted name, split (`[plugins.grants."x-y"]` -> plugins, grants, x-y). */
function headerSegments(inner: string): string[] | null {
  try {
    return parseKeyPath(inner.trim()).map(String);
  } catch {
    return null;
  }
}

/** The table headers of `lines` with resolved array indices; null when one cannot be read. */
function scanHeaders(lines: string[]): Header[] | null {
  const headers: Header[] = [];
  const counts = new Map<string, number>();
  for (const [line, text] of lines.entries()) {
    const m = /^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$/.exec(text);
    if (!m) continue;
    const segs = headerSegments(m[2]!);
    if (segs === null) return null;
    if (m[1] === "[[") {
      const key = segs.join("\u0000");
      const n = counts.get(key) ?? 0;
      counts.set(key, n + 1);
      headers.push({ line, path: [...segs, n] });
    } else {
      // A sub-table of an array entry (`[agents.queue]` after `[[agents]]`) belongs to the latest entry.
      const path: KeyPath = [];
      for (const [i, s] of segs.entries()) {
        path.push(s);
        const n = counts.get(segs.slice(0, i + 1).join("\u0000"));
        if (n !== undefined && i < segs.length - 1) path.push(n - 1);
      }
      headers.push({ line, path });
    }
  }
  return headers;
}

const samePath = (a: KeyPath, b: KeyPath) => a.length === b.length && a.every((s, i) => s === b[i]);

/** `key = ` at the start of a line (bare or quoted key). */
function keyLineRe(key: string): RegExp {
  const esc = key.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`^\\s*(?:${esc}|"${esc}")\\s*=`);
}

/** `text` ready for a new table after it: a blank line between, nothing before one in an empty file. */
function separated(text: string): string {
  const body = text.replace(/\n*$/, "");
  return body === "" ? "" : `${body}\n\n`;
}

/** The text edit alone (no check): null when the file's shape does not allow one. */
function editText(text: string, path: KeyPath, value: unknown): string | null {
  const lines = text.split("\n");
  const headers = scanHeaders(lines);
  if (headers === null) return null;
  const key = path.at(-1);
  if (typeof key !== "string") return null;
  const table = path.slice(0, -1);
  const rendered = `${/^[A-Za-z0-9_-]+$/.test(key) ? key : JSON.stringify(key)} = ${renderTomlValue(value)}`;
  const hIndex = headers.findIndex((h) => samePath(h.path, table));
  const start = table.length === 0 ? 0 : hIndex >= 0 ? headers[hIndex]!.line + 1 : -1;
  if (start >= 0) {
    const end = table.length === 0 ? (headers[0]?.line ?? lines.length) : (headers[hIndex + 1]?.line ?? lines.length);
    const re = keyLineRe(key);
    for (let i = start; i < end; i++) {
      if (re.test(lines[i]!)) {
        // A value spanning lines (multi-line array or string) is not edited here.
        if (/[[{]\s*(#.*)?$/.test(lines[i]!) || /"""|'''/.test(lines[i]!)) return null;
        const comment = /\s+(#[^"'\]}]*)$/.exec(lines[i]!)?.[1];
        lines[i] = comment ? `${rendered}   ${comment}` : rendered;
        return lines.join("\n");
      }
    }
    // Not set yet: after the table's last non-comment line (or its header).
    let at = start;
    for (let i = start; i < end; i++) if (/^\s*[^\s#]/.test(lines[i]!)) at = i + 1;
    lines.splice(at, 0, rendered);
    return lines.join("\n");
  }
  // A new table, appended; an array entry only as the next index.
  const last = table.at(-1);
  if (typeof last === "number") {
    const existing = headers.filter((h) => samePath(h.path.slice(0, -1), table.slice(0, -1)) && typeof h.path.at(-1) === "number").length;
    if (last !== existing || table.slice(0, -1).some((s) => typeof s === "number")) return null;
    return `${separated(text)}[[${formatKeyPath(table.slice(0, -1))}]]\n${rendered}\n`;
  }
  if (table.some((s) => typeof s === "number")) return null;
  return `${separated(text)}[${formatKeyPath(table)}]\n${rendered}\n`;
}

/** Parsed TOML as a string that ignores key order and prototypes (smol-toml's tables have none). */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (v instanceof Date) return `D${v.toISOString()}`;
  if (v !== null && typeof v === "object") {
    const entries = Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonical(x)}`).join(",")}}`;
  }
  return typeof v === "bigint" ? `${v}n` : JSON.stringify(v);
}

/**
 * Sets `path` to `value` in a TOML text, keeping every other line (comments included) when it
 * can, else rewriting the whole file from the parsed data.
 * @returns the new text and whether the comments were kept
 * @throws Error (smol-toml's TomlError) when `text` is not TOML; Error when the path runs through a value
 */
export function setTomlValue(text: string, path: KeyPath, value: unknown): { text: string; keptComments: boolean } {
  const before = parseToml(text) as TomlTable;
  const expected = setPath(before, path, value);
  const edited = editText(text, path, value);
  if (edited !== null) {
    try {
      if (canonical(parseToml(edited)) === canonical(expected)) return { text: edited, keptComments: true };
    } catch {
      // the edit broke the file (a redefined table, an inline table): rewrite instead
    }
  }
  return { text: stringifyToml(expected), keptComments: false };
}

/**
 * The 1-based line where `path` (or its nearest enclosing table) is defined in a TOML text, for
 * error messages; undefined when neither appears.
 */
export function locateKey(text: string, path: KeyPath): number | undefined {
  const lines = text.split("\n");
  const headers = scanHeaders(lines) ?? [];
  for (let n = path.length; n >= 0; n--) {
    const table = path.slice(0, n);
    const rest = path.slice(n);
    const hIndex = n === 0 ? -1 : headers.findIndex((h) => samePath(h.path, table));
    if (n > 0 && hIndex < 0) continue;
    const start = n === 0 ? 0 : headers[hIndex]!.line + 1;
    const end = n === 0 ? (headers[0]?.line ?? lines.length) : (headers[hIndex + 1]?.line ?? lines.length);
    const key = rest[0];
    if (typeof key === "string") {
      const re = keyLineRe(key);
      for (let i = start; i < end; i++) if (re.test(lines[i]!)) return i + 1;
    }
    if (n > 0) return headers[hIndex]!.line + 1;
  }
  return undefined;
}

/**
 * A line diff of two texts (longest common subsequence), as `-`/`+`/` ` prefixed lines with
 * `context` unchanged lines around each change; empty when equal.
 */
export function lineDiff(a: string, b: string, context = 2): string[] {
  const x = a.split("\n");
  const y = b.split("\n");
  const n = x.length;
  const m = y.length;
  const lcs: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--)
    for (let j = m - 1; j >= 0; j--) lcs[i]![j] = x[i] === y[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
  const ops: { op: " " | "-" | "+"; text: string }[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && x[i] === y[j]) ops.push({ op: " ", text: x[i++]! }), j++;
    // Removals before additions, as diff(1) prints a changed line.
    else if (i < n && (j === m || lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) ops.push({ op: "-", text: x[i++]! });
    else ops.push({ op: "+", text: y[j++]! });
  }
  const keep = ops.map((o, k) => o.op !== " " || ops.slice(Math.max(0, k - context), k + context + 1).some((p) => p.op !== " "));
  if (!ops.some((o) => o.op !== " ")) return [];
  const out: string[] = [];
  for (const [k, o] of ops.entries()) {
    if (keep[k]) out.push(`${o.op} ${o.text}`);
    else if (keep[k - 1]) out.push("  ...");
  }
  return out;
}
