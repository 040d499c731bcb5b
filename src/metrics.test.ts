import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { METRICS, PROMETHEUS_CONTENT_TYPE, prometheusText } from "./metrics.js";
import type { RealtimeStats } from "./types.js";

const stats = (changes: Partial<RealtimeStats> = {}): RealtimeStats => ({
  connections: { total: 7, anonymous: 3, users: 2, topics: 5 },
  events: { received: 11, sent: 13, dropped: 1 },
  listener: { state: "listening", reconnects: 2, lastReconnectAt: new Date(1_700_000_000_500) },
  replays: { running: 1, total: 4, resets: 2 },
  activity: { written: 40, dropped: 0, failed: 3 },
  ...changes,
});

// The line grammar of text format 0.0.4 (https://prometheus.io/docs/instrumenting/exposition_formats/).
const NAME = "[a-zA-Z_:][a-zA-Z0-9_:]*";
const LABEL = '[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"';
const VALUE = "(?:[+-]?(?:[0-9]+(?:\\.[0-9]*)?|\\.[0-9]+)(?:[eE][+-]?[0-9]+)?|NaN|[+-]Inf)";
const GRAMMAR = [
  new RegExp(`^# HELP ${NAME} (?:[^\\\\\\n]|\\\\[\\\\n])*$`),
  new RegExp(`^# TYPE ${NAME} (?:counter|gauge|histogram|summary|untyped)$`),
  new RegExp(`^${NAME}(?:\\{${LABEL}(?:,${LABEL})*\\})? ${VALUE}(?: -?[0-9]+)?$`),
];

/** Every sample as `name{labels}` → value, from the parser of the format. */
function samples(text: string): Map<string, number> {
  const found = new Map<string, number>();
  for (const family of parsePrometheusTextFormat(text)) {
    for (const metric of family.metrics) {
      const labels = Object.entries(metric.labels ?? {}).map(([k, v]) => `${k}=${v}`);
      found.set(`${family.name}{${labels.join(",")}}`, Number(metric.value));
    }
  }
  return found;
}

describe("prometheusText", () => {
  it("renders every line by the grammar of the text format, ending with a line feed", () => {
    const text = prometheusText(stats(), { app: 'a "quoted" \\ back\nslash' });
    expect(text.endsWith("\n")).toBe(true);
    const lines = text.slice(0, -1).split("\n");
    for (const line of lines) {
      expect(
        GRAMMAR.some((rule) => rule.test(line)),
        line,
      ).toBe(true);
    }
    // HELP then TYPE once per metric, before its samples.
    expect(lines.filter((line) => line.startsWith("# TYPE "))).toHaveLength(METRICS.length);
    expect(PROMETHEUS_CONTENT_TYPE).toBe(Registry.PROMETHEUS_CONTENT_TYPE);
  });

  it("gives the values of the stats, counters named _total and typed counter", () => {
    const text = prometheusText(stats());
    const families = parsePrometheusTextFormat(text);
    for (const family of families) {
      expect(family.type === "COUNTER", family.name).toBe(family.name.endsWith("_total"));
      expect(family.name.startsWith("pgrealtime_")).toBe(true);
    }
    expect(Object.fromEntries(samples(text))).toEqual({
      "pgrealtime_connections{kind=anonymous}": 3,
      "pgrealtime_connections{kind=user}": 4,
      "pgrealtime_connected_users{}": 2,
      "pgrealtime_connected_topics{}": 5,
      "pgrealtime_events_received_total{}": 11,
      "pgrealtime_events_sent_total{}": 13,
      "pgrealtime_events_dropped_total{}": 1,
      "pgrealtime_listener_up{}": 1,
      "pgrealtime_listener_state{state=idle}": 0,
      "pgrealtime_listener_state{state=connecting}": 0,
      "pgrealtime_listener_state{state=listening}": 1,
      "pgrealtime_listener_state{state=reconnecting}": 0,
      "pgrealtime_listener_state{state=failed}": 0,
      "pgrealtime_listener_state{state=closed}": 0,
      "pgrealtime_listener_reconnects_total{}": 2,
      "pgrealtime_listener_last_reconnect_timestamp_seconds{}": 1_700_000_000.5,
      "pgrealtime_replays_running{}": 1,
      "pgrealtime_replays_total{}": 4,
      "pgrealtime_replay_resets_total{}": 2,
      "pgrealtime_activity_written_total{}": 40,
      "pgrealtime_activity_dropped_total{}": 0,
      "pgrealtime_activity_failed_batches_total{}": 3,
    });
  });

  it("escapes label values so that the parser reads back exactly what was given", () => {
    const awkward = 'a "quoted" \\ back\nslash, } {x="y"}';
    const text = prometheusText(stats(), { app: awkward, region: "" });
    expect(text).toContain('app="a \\"quoted\\" \\\\ back\\nslash, } {x=\\"y\\"}"');
    for (const family of parsePrometheusTextFormat(text)) {
      for (const metric of family.metrics) expect(metric.labels?.app).toBe(awkward);
    }
  });

  it("uses no label but its own fixed ones (kind, state) and the constant ones given", () => {
    const names = new Set<string>();
    const values = new Set<string>();
    for (const family of parsePrometheusTextFormat(prometheusText(stats(), { realtime: "chat" }))) {
      for (const metric of family.metrics) {
        for (const [name, value] of Object.entries(metric.labels ?? {})) {
          names.add(name);
          if (name !== "realtime") values.add(value);
        }
      }
    }
    expect([...names].sort()).toEqual(["kind", "realtime", "state"]);
    // A fixed, small set of values: nothing that grows with users, events or topics.
    expect([...values].sort()).toEqual(
      ["anonymous", "closed", "connecting", "failed", "idle", "listening", "reconnecting", "user"].sort(),
    );
  });

  it("leaves out the last reconnect before the first one, and says the listener is down", () => {
    const text = prometheusText(
      stats({ listener: { state: "reconnecting", reconnects: 0, lastReconnectAt: null } }),
    );
    const found = samples(text);
    expect(found.has("pgrealtime_listener_last_reconnect_timestamp_seconds{}")).toBe(false);
    expect(text).toContain("# TYPE pgrealtime_listener_last_reconnect_timestamp_seconds gauge\n");
    expect(found.get("pgrealtime_listener_up{}")).toBe(0);
    expect(found.get("pgrealtime_listener_state{state=reconnecting}")).toBe(1);
  });

  it("refuses labels that are not label names, are reserved or are its own", () => {
    expect(() => prometheusText(stats(), { "bad-name": "x" })).toThrow(
      /"bad-name" is not a Prometheus label/,
    );
    expect(() => prometheusText(stats(), { __name__: "x" })).toThrow(/no "__" prefix/);
    expect(() => prometheusText(stats(), { kind: "x" })).toThrow(/label "kind" is pgrealtime's own/);
    expect(() => prometheusText(stats(), { app: 1 as unknown as string })).toThrow(/must be a string/);
    expect(() => prometheusText(stats(), null as unknown as Record<string, string>)).toThrow(
      /labels must be an object/,
    );
  });
});
