// memory: remember, recall and forget short notes, kept in the plugin's key-value store (`kv`).
//
// Notes belong to one conversation: (agent, channel, account, peer, sender), all taken from the
// host-filled call context — never from the model's input, so one peer cannot ask for another's
// notes, and Telegram chat 111, webhook peer 111 and WebSocket peer 111 (or two agents talking
// to the same peer) keep separate notebooks. `sender` falls back to `peer` (direct chats). A
// missing field is the empty string; a call without context (e.g. `exoclaw plugin test`) lands
// in one notebook of its own.
//
// Keys: "v2/n/<notebook>/<id, 10 digits>" -> the note (UTF-8); "v2/seq/<notebook>" -> the last
// id used, where <notebook> is the five fields, each escaped ("%" -> "%25", "/" -> "%2F") and
// joined with "/": escaped fields never contain "/", so the encoding is unambiguous ("a/b"+"c"
// and "a"+"b/c" differ). Notes written by 0.1.0 under "n/<peer>/..." (one notebook per bare peer
// id, shared across channels and agents) are not migrated: which conversation wrote them cannot
// be told any more, so they stay unread (delete the plugin's kv file to reclaim their space).

import { kvDelete, kvGet, kvList, kvSet, runToolWithContext, ToolContext, ToolResult, Value } from "@exoclaw/plugin-sdk/assembly";

const MAX_NOTE_CHARS: i32 = 2000;
const MAX_NOTES: i32 = 1000;
const MAX_RECALL: i32 = 20;
const MAX_QUERY_CHARS: i32 = 500;

class Fail {
  constructor(public message: string) {}
}

let failure: Fail | null = null;

/** Turns a host error into a message for the model (a missing grant says so plainly). */
function hostFailure(error: string): void {
  if (error.includes("not granted")) {
    failure = new Fail("memory is not available: the operator has not granted this plugin the 'kv' capability (" + error + ")");
  } else {
    failure = new Fail("memory store error: " + error);
  }
}

function escapePart(part: string | null): string {
  return part == null ? "" : part.replaceAll("%", "%25").replaceAll("/", "%2F");
}

/** The notebook of the call's conversation (see the key layout above). */
function notebookOf(c: ToolContext): string {
  const sender = c.sender != null ? c.sender : c.peer;
  return escapePart(c.agentId) + "/" + escapePart(c.channel) + "/" + escapePart(c.account) + "/" + escapePart(c.peer) + "/" + escapePart(sender);
}

function pad10(id: i64): string {
  let s = id.toString();
  while (s.length < 10) s = "0" + s;
  return s;
}

function noteKey(book: string, id: i64): string {
  return "v2/n/" + book + "/" + pad10(id);
}

function notePrefix(book: string): string {
  return "v2/n/" + book + "/";
}

function utf8(s: string): Uint8Array {
  return Uint8Array.wrap(String.UTF8.encode(s));
}

function text(b: Uint8Array): string {
  return String.UTF8.decode(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

/** Keys of the notebook's notes, oldest first (empty on failure; `failure` set). */
function keys(book: string): Array<string> {
  const r = kvList(notePrefix(book));
  if (!r.ok) {
    hostFailure(r.error);
    return new Array<string>();
  }
  return r.strings();
}

function idOf(key: string): i64 {
  return I64.parseInt(key.substring(key.lastIndexOf("/") + 1), 10);
}

function remember(book: string, note: string): string {
  const existing = keys(book);
  if (failure != null) return "";
  if (existing.length >= MAX_NOTES) {
    failure = new Fail("this notebook is full (" + MAX_NOTES.toString() + " notes); forget some first");
    return "";
  }
  const seqKey = "v2/seq/" + book;
  const seq = kvGet(seqKey);
  if (!seq.ok) {
    hostFailure(seq.error);
    return "";
  }
  const last = seq.bytes();
  const id: i64 = (last != null ? I64.parseInt(text(last), 10) : 0) + 1;
  const w = kvSet(noteKey(book, id), utf8(note));
  if (!w.ok) {
    hostFailure(w.error);
    return "";
  }
  const s = kvSet(seqKey, utf8(id.toString()));
  if (!s.ok) {
    hostFailure(s.error);
    return "";
  }
  return "Remembered note #" + id.toString() + ".";
}

function words(q: string): Array<string> {
  const out = new Array<string>();
  const parts = q.toLowerCase().split(" ");
  for (let i = 0; i < parts.length; i++) if (parts[i].trim().length > 0) out.push(parts[i].trim());
  return out;
}

function recall(book: string, query: string): string {
  const all = keys(book);
  if (failure != null) return "";
  const want = words(query);
  const lines = new Array<string>();
  let matches = 0;
  // Newest first.
  for (let i = all.length - 1; i >= 0; i--) {
    const r = kvGet(all[i]);
    if (!r.ok) {
      hostFailure(r.error);
      return "";
    }
    const b = r.bytes();
    if (b == null) continue;
    const note = text(b);
    const lower = note.toLowerCase();
    let hit = true;
    for (let k = 0; k < want.length; k++) {
      if (!lower.includes(want[k])) {
        hit = false;
        break;
      }
    }
    if (!hit) continue;
    matches++;
    if (lines.length < MAX_RECALL) lines.push("#" + idOf(all[i]).toString() + ": " + note);
  }
  if (matches == 0) {
    return all.length == 0 ? "No notes yet." : "No note matches '" + query + "' (" + all.length.toString() + " notes in total).";
  }
  const head = query.length == 0
    ? all.length.toString() + " note" + (all.length == 1 ? "" : "s") + ", newest first"
    : matches.toString() + " note" + (matches == 1 ? "" : "s") + " matching '" + query + "', newest first";
  return head + (matches > lines.length ? " (the first " + lines.length.toString() + " shown)" : "") + ":\n" + lines.join("\n");
}

function forget(book: string, id: i64): string {
  const r = kvDelete(noteKey(book, id));
  if (!r.ok) {
    hostFailure(r.error);
    return "";
  }
  const existed = r.value.isBool() && r.value.boolValue;
  if (!existed) {
    failure = new Fail("there is no note #" + id.toString());
    return "";
  }
  return "Forgot note #" + id.toString() + ".";
}

/** At most 40 characters of `s`, for echoing input in messages. */
function clip(s: string): string {
  return s.length <= 40 ? s : s.substring(0, 40) + "...";
}

function handle(tool: string, input: Value, context: ToolContext): ToolResult {
  failure = null;
  if (tool != "memory") return ToolResult.error("unknown tool '" + clip(tool) + "'");
  if (!input.isMap()) return ToolResult.error("input must be an object {action, note?, query?, id?}");
  const actionV = input.get("action");
  if (actionV == null || !actionV.isString()) return ToolResult.error("'action' must be \"remember\", \"recall\" or \"forget\"");
  const action = actionV.strValue;
  const book = notebookOf(context);
  let out = "";
  if (action == "remember") {
    const n = input.get("note");
    if (n == null || !n.isString() || n.strValue.trim().length == 0) return ToolResult.error("'remember' needs 'note', a non-empty string");
    if (n.strValue.length > MAX_NOTE_CHARS) return ToolResult.error("'note' is longer than " + MAX_NOTE_CHARS.toString() + " characters; keep notes short");
    out = remember(book, n.strValue.trim());
  } else if (action == "recall") {
    const q = input.get("query");
    if (q != null && !q.isNil() && !q.isString()) return ToolResult.error("'query' must be a string");
    const query = q != null && q.isString() ? q.strValue.trim() : "";
    if (query.length > MAX_QUERY_CHARS) return ToolResult.error("'query' is longer than " + MAX_QUERY_CHARS.toString() + " characters");
    out = recall(book, query);
  } else if (action == "forget") {
    const idV = input.get("id");
    const id = idV != null ? idV.asNumber() : NaN;
    if (isNaN(id) || id < 1 || id > 9999999999 || Math.floor(id) != id) return ToolResult.error("'forget' needs 'id', the number of a note (as shown by recall)");
    out = forget(book, <i64>id);
  } else {
    return ToolResult.error("unknown action '" + clip(action) + "' (expected remember, recall or forget)");
  }
  const f = failure;
  if (f != null) return ToolResult.error(f.message);
  return ToolResult.ok(out);
}

export function call(): i32 {
  return runToolWithContext(handle);
}
