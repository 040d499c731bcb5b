// Types of the untyped parse-prometheus-text-format (a port of Prometheus's own Go text parser), as the
// metrics tests use it.
declare module "parse-prometheus-text-format" {
  interface ParsedFamily {
    name: string;
    help: string;
    type: "COUNTER" | "GAUGE" | "HISTOGRAM" | "SUMMARY" | "UNTYPED";
    metrics: Array<{ value: string; labels?: Record<string, string> }>;
  }
  /** Parses text exposition format 0.0.4; throws on malformed input. */
  export default function parsePrometheusTextFormat(text: string): ParsedFamily[];
}
