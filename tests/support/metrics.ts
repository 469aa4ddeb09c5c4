// Scraping the gateway's /metrics in tests: fetched over HTTP, parsed with a Prometheus
// text-format parser (parse-prometheus-text-format, prom2json's shape), looked up by name and labels.
import parsePrometheusTextFormat, { type PromFamily, type PromSample } from "parse-prometheus-text-format";

/** A parsed scrape: metric families by name. */
export class Scrape {
  readonly families: Map<string, PromFamily>;
  /**
   * Every sample line by its own name (`x_bucket`, `x_sum`, `x_count` apart). The parser folds a
   * histogram's lines into one sample and so loses its labels (it handles unlabelled histograms
   * only): the text is parsed a second time with the histograms' HELP/TYPE lines left out, which
   * makes each of their lines an untyped sample with its labels.
   */
  private readonly lines = new Map<string, PromSample[]>();

  constructor(readonly text: string) {
    this.families = new Map(parsePrometheusTextFormat(text).map((f) => [f.name, f]));
    const histograms = [...this.families.values()].filter((f) => f.type === "HISTOGRAM").map((f) => f.name);
    const untyped = text
      .split("\n")
      .filter((l) => !histograms.some((h) => l.startsWith(`# HELP ${h} `) || l.startsWith(`# TYPE ${h} `)))
      .join("\n");
    for (const f of parsePrometheusTextFormat(untyped)) this.lines.set(f.name, [...(this.lines.get(f.name) ?? []), ...f.metrics]);
  }

  /** The samples of `name` (for a histogram: its `_count` lines) whose labels include `labels`. */
  samples(name: string, labels: Record<string, string> = {}): PromSample[] {
    const own = this.type(name) === "HISTOGRAM" ? this.lines.get(`${name}_count`) : this.lines.get(name);
    return (own ?? []).filter((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  }

  /** The sum of the values (counters, gauges) or counts (histograms) of `name` matching `labels`; 0 when none. */
  value(name: string, labels: Record<string, string> = {}): number {
    return this.samples(name, labels).reduce((sum, m) => sum + Number(m.value ?? 0), 0);
  }

  /** The type of `name` as the exposition declares it (`COUNTER`, `HISTOGRAM`, ...). */
  type(name: string): string | undefined {
    return this.families.get(name)?.type;
  }
}

/**
 * GET `<baseUrl>/metrics` (with `token` as `Authorization: Bearer`) and parse it.
 * @throws Error naming the status when the answer is not 200
 */
export async function scrapeMetrics(baseUrl: string, token?: string): Promise<Scrape> {
  const res = await fetch(`${baseUrl}/metrics`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}: ${text}`);
  return new Scrape(text);
}
