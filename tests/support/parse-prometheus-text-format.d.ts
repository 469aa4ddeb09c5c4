// Types for the `parse-prometheus-text-format` package (it ships none): its output follows prom2json.
declare module "parse-prometheus-text-format" {
  /** One sample of a counter, gauge or untyped metric; histograms and summaries carry buckets/quantiles, count and sum. */
  export interface PromSample {
    labels?: Record<string, string>;
    value?: string;
    buckets?: Record<string, string>;
    quantiles?: Record<string, string>;
    count?: string;
    sum?: string;
  }
  export interface PromFamily {
    name: string;
    help: string;
    type: "COUNTER" | "GAUGE" | "HISTOGRAM" | "SUMMARY" | "UNTYPED";
    metrics: PromSample[];
  }
  /** Parses the Prometheus text exposition format; throws on a malformed line. */
  export default function parsePrometheusTextFormat(text: string): PromFamily[];
}
