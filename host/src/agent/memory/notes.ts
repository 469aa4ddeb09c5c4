/**
 * The host's note store: the agents' standing notes (written by the model with the built-in
 * `memory` tool), kept in process with one BM25 index per notebook, and persisted to
 * `<state dir>/memory/notes.jsonl` (0600, in a 0700 directory) unless the session store is the
 * in-process `memory` one.
 *
 * File format: one JSON object per line, `{"add": Note}`. An add is appended (one `appendFile`,
 * not fsynced, like the plugins' kv file); a delete rewrites the whole file without the deleted
 * notes (temporary file + rename), so deleted text does not stay in the file. At open, a line
 * that does not parse (a torn last write) is skipped with a warning.
 */
import { appendFile, mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import type { Logger } from "pino";
import { bookKey, chatKey, matchesFilter, readable, type MemoryScope, type MemoryShare, type ScopeFilter } from "./scope.js";
import { TextIndex, tokenize } from "./text-index.js";

/** Longest note, characters (the `memory` tool refuses longer ones). */
export const MAX_NOTE_CHARS = 2000;
/** Default of {@link NoteStoreOptions.maxPerBook}: notes per notebook (one conversation's). */
export const DEFAULT_MAX_NOTES_PER_BOOK = 1000;

/** A stored note: its id (unique in the store, increasing), where it was written, its text, when (ms epoch). */
export interface Note extends MemoryScope {
  id: number;
  text: string;
  at: number;
}

/** A note found by a search, with its BM25 score (higher is better; comparable within one search). */
export interface NoteHit {
  note: Note;
  score: number;
}

/** Options of {@link NoteStore.open}. */
export interface NoteStoreOptions {
  /** The JSONL file; absent = in process only (the `memory` session store, tests). */
  file?: string | undefined;
  /** Notes per notebook before `add` refuses; default {@link DEFAULT_MAX_NOTES_PER_BOOK}. */
  maxPerBook?: number | undefined;
  /** Warns about damaged lines at open and failed writes. */
  logger?: Logger | undefined;
  /** Clock for `at`, ms epoch; default `Date.now`. */
  now?: () => number;
}

/** A notebook: the notes of one exact scope, oldest first, and their index. */
interface Book {
  notes: Map<number, Note>;
  /** The same notes oldest first (the newest are read from its end without copying). */
  order: Note[];
  index: TextIndex<number>;
}

/** A note the store refuses (empty, too long, notebook full); the message is for the model or client. */
export class NoteError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "NoteError";
  }
}

/**
 * Notes by scope. Reads are synchronous and in process (recall costs no I/O); writes update the
 * index at once and resolve once the file has them. Not safe across processes: one gateway owns
 * a state directory (the store directory's lock already enforces that for `surrealkv://`).
 */
export class NoteStore {
  private readonly byId = new Map<number, Note>();
  private readonly books = new Map<string, Book>();
  /** chatKey -> bookKeys, agent -> bookKeys: the notebooks a wider share reads. */
  private readonly byChat = new Map<string, Set<string>>();
  private readonly byAgent = new Map<string, Set<string>>();
  private lastId = 0;
  private writes: Promise<void> = Promise.resolve();
  private dirReady = false;
  /** Called with the notes each delete removed (the memory service drops their vectors). */
  readonly deleted = new Set<(notes: readonly Note[]) => void>();

  private constructor(private readonly options: NoteStoreOptions) {}

  /**
   * Opens the store, loading `options.file` when it exists (its directory is created 0700 at
   * the first write: a gateway whose agents write no notes leaves nothing on disk).
   * @throws Error when the file exists but cannot be read
   */
  static async open(options: NoteStoreOptions = {}): Promise<NoteStore> {
    const store = new NoteStore(options);
    if (options.file === undefined) return store;
    let text = "";
    try {
      text = await readFile(options.file, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
    let line = 0;
    for (const raw of text.split("\n")) {
      line++;
      if (raw.trim() === "") continue;
      try {
        const note = (JSON.parse(raw) as { add?: Note }).add;
        if (!isNote(note)) throw new Error("not a note");
        store.insert(note);
      } catch (err) {
        options.logger?.warn({ file: options.file, line, error: (err as Error).message }, "memory notes: skipped a damaged line");
      }
    }
    return store;
  }

  /** Notes stored. */
  get size(): number {
    return this.byId.size;
  }

  /**
   * Stores a note written in `scope`.
   * @throws NoteError for an empty or too long text or a full notebook; Error when the file write fails
   */
  async add(scope: MemoryScope, text: string): Promise<Note> {
    const t = text.trim();
    if (t.length === 0) throw new NoteError("a note must not be empty");
    if (t.length > MAX_NOTE_CHARS) throw new NoteError(`a note is at most ${MAX_NOTE_CHARS} characters (this one has ${t.length})`);
    const max = this.options.maxPerBook ?? DEFAULT_MAX_NOTES_PER_BOOK;
    if ((this.books.get(bookKey(scope))?.notes.size ?? 0) >= max) throw new NoteError(`this notebook is full (${max} notes); forget some first`);
    const { agent, channel, account, peer, sender } = scope;
    const note: Note = { id: this.lastId + 1, agent, channel, account, peer, sender, text: t, at: (this.options.now ?? Date.now)() };
    this.insert(note);
    const file = this.options.file;
    if (file !== undefined) await this.write(() => appendFile(file, `${JSON.stringify({ add: note })}\n`, { mode: 0o600 }));
    return note;
  }

  /** The note with this id, if stored. */
  get(id: number): Note | undefined {
    return this.byId.get(id);
  }

  /** The newest `limit` notes `reader` may read under `share`, newest first. */
  standing(reader: MemoryScope, share: MemoryShare, limit: number): Note[] {
    const out: Note[] = [];
    for (const book of this.readableBooks(reader, share)) {
      const notes = book.order;
      for (let i = notes.length - 1; i >= Math.max(0, notes.length - limit); i--) out.push(notes[i]!);
    }
    out.sort((a, b) => b.id - a.id);
    return out.slice(0, limit);
  }

  /** Every note `reader` may read under `share`, per notebook oldest first (live arrays: do not modify). */
  readableNotes(reader: MemoryScope, share: MemoryShare): readonly (readonly Note[])[] {
    return this.readableBooks(reader, share).map((b) => b.order);
  }

  /** The best `limit` notes for `query` that `reader` may read under `share`, best first. */
  search(reader: MemoryScope, share: MemoryShare, query: string, limit: number): NoteHit[] {
    const terms = [...new Set(tokenize(query))];
    if (terms.length === 0) return [];
    const hits: NoteHit[] = [];
    for (const book of this.readableBooks(reader, share)) {
      for (const h of book.index.searchTerms(terms, limit)) hits.push({ note: book.notes.get(h.id)!, score: h.score });
    }
    hits.sort((a, b) => b.score - a.score || b.note.id - a.note.id);
    return hits.slice(0, limit);
  }

  /** Notes matching `filter`, by id, after `afterId`, at most `limit` (operator listing). */
  list(filter: ScopeFilter, afterId = 0, limit = 100): Note[] {
    const out: Note[] = [];
    for (const note of this.byId.values()) {
      if (note.id <= afterId || !matchesFilter(note, filter)) continue;
      out.push(note);
      if (out.length >= limit) break;
    }
    return out;
  }

  /** The best `limit` notes for `query` among those matching `filter` (operator search). */
  searchWhere(filter: ScopeFilter, query: string, limit: number): NoteHit[] {
    const terms = [...new Set(tokenize(query))];
    if (terms.length === 0) return [];
    const hits: NoteHit[] = [];
    for (const book of this.books.values()) {
      const first = book.notes.values().next().value;
      if (first === undefined || !matchesFilter(first, filter)) continue;
      for (const h of book.index.searchTerms(terms, limit)) hits.push({ note: book.notes.get(h.id)!, score: h.score });
    }
    hits.sort((a, b) => b.score - a.score || b.note.id - a.note.id);
    return hits.slice(0, limit);
  }

  /**
   * Deletes the notes with these ids that `allowed` accepts (default all); returns those deleted.
   * The file is rewritten without them before this resolves.
   * @throws Error when the file write fails (the notes are gone from memory already)
   */
  async delete(ids: readonly number[], allowed: (note: Note) => boolean = () => true): Promise<Note[]> {
    const gone: Note[] = [];
    for (const id of ids) {
      const note = this.byId.get(id);
      if (note && allowed(note)) {
        this.removeNote(note);
        gone.push(note);
      }
    }
    if (gone.length > 0) {
      for (const fn of this.deleted) fn(gone);
      await this.rewrite();
    }
    return gone;
  }

  /** Deletes every note matching `filter` (forgetting a peer); returns how many. @throws Error when the file write fails */
  async deleteWhere(filter: ScopeFilter): Promise<number> {
    const ids = [...this.byId.values()].filter((n) => matchesFilter(n, filter)).map((n) => n.id);
    return (await this.delete(ids)).length;
  }

  /** Waits for pending file writes (shutdown). */
  async flush(): Promise<void> {
    await this.writes;
  }

  private readableBooks(reader: MemoryScope, share: MemoryShare): Book[] {
    const keys = share === "sender" ? [bookKey(reader)] : [...((share === "peer" ? this.byChat.get(chatKey(reader)) : this.byAgent.get(reader.agent)) ?? [])];
    const out: Book[] = [];
    for (const k of keys) {
      const book = this.books.get(k);
      // Defence in depth: every note of a readable book must pass the scope rule.
      const first = book?.notes.values().next().value;
      if (book && first !== undefined && readable(first, reader, share)) out.push(book);
    }
    return out;
  }

  private insert(note: Note): void {
    const key = bookKey(note);
    let book = this.books.get(key);
    if (!book) {
      this.books.set(key, (book = { notes: new Map(), order: [], index: new TextIndex() }));
      addTo(this.byChat, chatKey(note), key);
      addTo(this.byAgent, note.agent, key);
    }
    book.notes.set(note.id, note);
    // Ids only grow, except when a file is loaded out of order: keep `order` sorted by id.
    if (book.order.length === 0 || book.order[book.order.length - 1]!.id < note.id) book.order.push(note);
    else
      book.order.splice(
        book.order.findIndex((n) => n.id > note.id),
        0,
        note,
      );
    book.index.add(note.id, note.text);
    this.byId.set(note.id, note);
    if (note.id > this.lastId) this.lastId = note.id;
  }

  private removeNote(note: Note): void {
    const key = bookKey(note);
    const book = this.books.get(key);
    this.byId.delete(note.id);
    if (!book) return;
    book.notes.delete(note.id);
    book.order.splice(book.order.indexOf(note), 1);
    book.index.remove(note.id);
    if (book.notes.size === 0) {
      this.books.delete(key);
      this.byChat.get(chatKey(note))?.delete(key);
      this.byAgent.get(note.agent)?.delete(key);
    }
  }

  private rewrite(): Promise<void> {
    const file = this.options.file;
    if (file === undefined) return Promise.resolve();
    return this.write(async () => {
      const tmp = `${file}.tmp`;
      const body = [...this.byId.values()].map((n) => `${JSON.stringify({ add: n })}\n`).join("");
      await writeFile(tmp, body, { mode: 0o600 });
      await rename(tmp, file);
    });
  }

  /** Runs file writes one at a time, in call order (the first creates the directory, 0700). */
  private write(fn: () => Promise<void>): Promise<void> {
    const dir = dirname(this.options.file!);
    const run = async () => {
      if (!this.dirReady) {
        await mkdir(dir, { recursive: true, mode: 0o700 });
        this.dirReady = true;
      }
      await fn();
    };
    const next = this.writes.then(run, run);
    this.writes = next.catch((err: unknown) => {
      this.options.logger?.error({ file: this.options.file, error: (err as Error).message }, "memory notes: cannot write the notes file");
    });
    return next;
  }
}

function addTo(map: Map<string, Set<string>>, key: string, value: string): void {
  let set = map.get(key);
  if (!set) map.set(key, (set = new Set()));
  set.add(value);
}

const str = (v: unknown): v is string => typeof v === "string" && v.length > 0;

function isNote(v: unknown): v is Note {
  const n = v as Note | undefined;
  return (
    n !== undefined &&
    n !== null &&
    Number.isSafeInteger(n.id) &&
    n.id > 0 &&
    [n.agent, n.channel, n.account, n.peer, n.sender, n.text].every(str) &&
    typeof n.at === "number"
  );
}
