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

interface Doc {
  /** Tokens in the document. */
  length: number;
  /** Term -> occurrences. */
  tf: Map<string, number>;
}

/** A ranked hit: the document id and its BM25 score (higher is better; comparable within one search). */
export interface IndexHit<K> {
  id: K;
  score: number;
}

/**
 * A BM25 index over documents with ids of type `K`. `add` of an existing id replaces it.
 * Search cost is proportional to the postings of the query's words, not to the index size.
 */
export class TextIndex<K> {
  private readonly docs = new Map<K, Doc>();
  private readonly postings = new Map<string, Set<K>>();
  private totalLength = 0;

  /** Documents indexed. */
  get size(): number {
    return this.docs.size;
  }

  /** Indexes `text` under `id` (replacing what `id` had). */
  add(id: K, text: string): void {
    if (this.docs.has(id)) this.remove(id);
    const tokens = tokenize(text);
    const tf = new Map<string, number>();
    for (const t of tokens) tf.set(t, (tf.get(t) ?? 0) + 1);
    for (const t of tf.keys()) {
      let set = this.postings.get(t);
      if (!set) this.postings.set(t, (set = new Set()));
      set.add(id);
    }
    this.docs.set(id, { length: tokens.length, tf });
    this.totalLength += tokens.length;
  }

  /** Removes `id`; false when it was not indexed. */
  remove(id: K): boolean {
    const doc = this.docs.get(id);
    if (!doc) return false;
    for (const t of doc.tf.keys()) {
      const set = this.postings.get(t);
      set?.delete(id);
      if (set?.size === 0) this.postings.delete(t);
    }
    this.docs.delete(id);
    this.totalLength -= doc.length;
    return true;
  }

  /**
   * The best `limit` documents for `query` (any of its words; more and rarer words rank higher),
   * best first; ties by insertion order. `[]` for a query without indexable words.
   */
  search(query: string, limit: number): IndexHit<K>[] {
    return this.searchTerms([...new Set(tokenize(query))], limit);
  }

  /** {@link search} with the query already tokenized (distinct terms). */
  searchTerms(terms: readonly string[], limit: number): IndexHit<K>[] {
    const n = this.docs.size;
    if (n === 0 || terms.length === 0 || limit <= 0) return [];
    const avg = this.totalLength / n || 1;
    const scores = new Map<K, number>();
    for (const t of terms) {
      const set = this.postings.get(t);
      if (!set) continue;
      const idf = Math.log(1 + (n - set.size + 0.5) / (set.size + 0.5));
      for (const id of set) {
        const doc = this.docs.get(id)!;
        const f = doc.tf.get(t)!;
        const s = (idf * f * (K1 + 1)) / (f + K1 * (1 - B + (B * doc.length) / avg));
        scores.set(id, (scores.get(id) ?? 0) + s);
      }
    }
    const hits: IndexHit<K>[] = [];
    for (const [id, score] of scores) hits.push({ id, score });
    // Stable sort: equal scores keep the order the ids were first met in.
    hits.sort((a, b) => b.score - a.score);
    return hits.length > limit ? hits.slice(0, limit) : hits;
  }
}
