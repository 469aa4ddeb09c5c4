/**
 * An in-process full-text index with BM25 ranking (Robertson & Zaragoza, "The Probabilistic
 * Relevance Framework: BM25 and Beyond", 2009; k1 = 1.2, b = 0.75, idf = ln(1 + (N - df + 0.5) /
 * (df + 0.5)), the Lucene form, never negative). Pure: no I/O.
 *
 * Used for memory recall (one index per notebook, one per session's earlier events) where a
 * store query per turn would cost more than the whole 1 ms budget (a SurrealDB query costs
 * ~0.5 ms of CPU even when it finds nothing, and its full-text `@@` needs every word to match).
 */

/** BM25 term-frequency saturation. */
const K1 = 1.2;
/** BM25 length normalisation. */
const B = 0.75;
/** Longest token kept, characters (longer ones are cut: a pasted blob should not bloat the index). */
const MAX_TOKEN = 40;

/** Words too common to rank anything (English; every other language keeps all its words). */
const STOPWORDS: ReadonlySet<string> = new Set(
  (
    "a an and are as at be but by can could did do does for from had has have he her hers him his how i if in into is it its " +
    "just me my no not of on or our she so than that the their them then there these they this to too us was we were what " +
    "when where which who whom why will with would you your yours please tell know about remember recall"
  ).split(" "),
);

/**
 * The words of `text` for indexing and queries: lower-cased runs of letters and digits (Unicode),
 * at least 2 characters (any length for digits), without English stop words, each cut to
 * {@link MAX_TOKEN} characters.
 */
export function tokenize(text: string): string[] {
  const out: string[] = [];
  for (const m of text.toLowerCase().matchAll(/[\p{L}\p{N}]+/gu)) {
    const w = m[0].length > MAX_TOKEN ? m[0].slice(0, MAX_TOKEN) : m[0];
    if ((w.length < 2 && !/\d/.test(w)) || STOPWORDS.has(w)) continue;
    out.push(w);
  }
  return out;
}

/** A posting list: the slots of the documents that contain a term and how often each does. */
interface Posting {
  slots: number[];
  tfs: number[];
}

/** A ranked hit: the document id and its BM25 score (higher is better; comparable within one search). */
export interface IndexHit<K> {
  id: K;
  score: number;
}

/**
 * Terms whose document frequency is above this fraction of the index only add to documents a
 * rarer query term already found (accumulator pruning, Moffat & Zobel, "Self-indexing inverted
 * files for fast text retrieval", 1996): their idf is small, so they reorder candidates but
 * almost never bring a new one into the top; without it one very common word costs a pass over
 * most of the index. When every query term is that common, the rarest one is scored in full.
 * Exact BM25 below {@link COMMON_MIN} documents per term.
 */
const COMMON_FRACTION = 0.02;
/** Document frequency up to which a term is always scored in full (small indexes are never pruned). */
const COMMON_MIN = 256;

/**
 * A BM25 index over documents with ids of type `K`. `add` of an existing id replaces it.
 * Documents live in dense slots (arrays, not maps, on the search path); search cost is the
 * postings of the query's uncommon words plus a lookup per candidate for the common ones.
 */
export class TextIndex<K> {
  private readonly slotOf = new Map<K, number>();
  private readonly ids: (K | undefined)[] = [];
  /** Tokens per slot; -1 for a free slot. */
  private readonly lengths: number[] = [];
  /** Term -> occurrences, per slot (for removal and for scoring common terms on candidates). */
  private readonly tfOf: (Map<string, number> | undefined)[] = [];
  private readonly free: number[] = [];
  private readonly postings = new Map<string, Posting>();
  private totalLength = 0;

  /** Documents indexed. */
  get size(): number {
    return this.slotOf.size;
  }

  /** Indexes `text` under `id` (replacing what `id` had). */
  add(id: K, text: string): void {
    if (this.slotOf.has(id)) this.remove(id);
    const tokens = tokenize(text);
    const tf = new Map<string, number>();
    for (const t of tokens) tf.set(t, (tf.get(t) ?? 0) + 1);
    const slot = this.free.pop() ?? this.ids.length;
    this.ids[slot] = id;
    this.lengths[slot] = tokens.length;
    this.tfOf[slot] = tf;
    this.slotOf.set(id, slot);
    for (const [t, n] of tf) {
      let p = this.postings.get(t);
      if (!p) this.postings.set(t, (p = { slots: [], tfs: [] }));
      p.slots.push(slot);
      p.tfs.push(n);
    }
    this.totalLength += tokens.length;
  }

  /** Removes `id`; false when it was not indexed. Costs the postings of its words. */
  remove(id: K): boolean {
    const slot = this.slotOf.get(id);
    if (slot === undefined) return false;
    for (const t of this.tfOf[slot]!.keys()) {
      const p = this.postings.get(t)!;
      const i = p.slots.indexOf(slot);
      p.slots.splice(i, 1);
      p.tfs.splice(i, 1);
      if (p.slots.length === 0) this.postings.delete(t);
    }
    this.totalLength -= this.lengths[slot]!;
    this.slotOf.delete(id);
    this.ids[slot] = undefined;
    this.lengths[slot] = -1;
    this.tfOf[slot] = undefined;
    this.free.push(slot);
    return true;
  }

  /**
   * The best `limit` documents for `query` (any of its words; more and rarer words rank higher),
   * best first. `[]` for a query without indexable words.
   */
  search(query: string, limit: number): IndexHit<K>[] {
    return this.searchTerms([...new Set(tokenize(query))], limit);
  }

  /** {@link search} with the query already tokenized (distinct terms). */
  searchTerms(terms: readonly string[], limit: number): IndexHit<K>[] {
    const n = this.slotOf.size;
    if (n === 0 || terms.length === 0 || limit <= 0) return [];
    const avg = this.totalLength / n || 1;
    const found: { term: string; p: Posting }[] = [];
    for (const term of terms) {
      const p = this.postings.get(term);
      if (p) found.push({ term, p });
    }
    if (found.length === 0) return [];
    found.sort((a, b) => a.p.slots.length - b.p.slots.length);
    const common = Math.max(COMMON_MIN, Math.floor(n * COMMON_FRACTION));
    const scores = new Map<number, number>();
    const norm = (slot: number) => K1 * (1 - B + (B * this.lengths[slot]!) / avg);
    for (let i = 0; i < found.length; i++) {
      const { term, p } = found[i]!;
      const df = p.slots.length;
      const idf = Math.log(1 + (n - df + 0.5) / (df + 0.5));
      if (df <= common || i === 0) {
        for (let j = 0; j < df; j++) {
          const slot = p.slots[j]!;
          const f = p.tfs[j]!;
          scores.set(slot, (scores.get(slot) ?? 0) + (idf * f * (K1 + 1)) / (f + norm(slot)));
        }
      } else {
        for (const [slot, s] of scores) {
          const f = this.tfOf[slot]!.get(term);
          if (f !== undefined) scores.set(slot, s + (idf * f * (K1 + 1)) / (f + norm(slot)));
        }
      }
    }
    // Top `limit` by a bounded insertion (limit is small).
    const top: { slot: number; score: number }[] = [];
    for (const [slot, score] of scores) {
      if (top.length === limit && score <= top[top.length - 1]!.score) continue;
      let k = top.length < limit ? top.length : limit - 1;
      while (k > 0 && top[k - 1]!.score < score) k--;
      top.splice(k, 0, { slot, score });
      if (top.length > limit) top.pop();
    }
    return top.map((t) => ({ id: this.ids[t.slot]!, score: t.score }));
  }
}
