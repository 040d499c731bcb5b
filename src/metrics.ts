// The metrics of one instance, defined once: the Prometheus text that `{basePath}/admin/metrics` serves is
// rendered from this table, and `pgrealtime/prometheus` builds its prom-client metrics from the same table.
// The renderer is written here rather than taken from prom-client because prom-client is an optional peer:
// the admin page must serve metrics without it, and the format's escaping is three characters.
import type { ListenerState, RealtimeStats } from "./types.js";

/** The `Content-Type` of {@link prometheusText}'s output. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** One sample of a metric: its own labels (not the constant ones) and its value. */
export interface Sample {
  labels: Record<string, string>;
  value: number;
}

/** One metric: name, help text, type, the names of its own labels and how to read it from the stats. */
export interface MetricDefinition {
  name: string;
  help: string;
  type: "gauge" | "counter";
  labelNames: readonly string[];
  samples(stats: RealtimeStats): Sample[];
}

/** Every state of the LISTEN connection (the `satisfies` fails to compile when a state is missing). */
const LISTENER_STATES = Object.keys({
  idle: true,
  connecting: true,
  listening: true,
  reconnecting: true,
  failed: true,
  closed: true,
} satisfies Record<ListenerState, true>) as ListenerState[];

const one = (value: number): Sample[] => [{ labels: {}, value }];
const gauge = (name: string, help: string, read: (stats: RealtimeStats) => number): MetricDefinition => ({
  name,
  help,
  type: "gauge",
  labelNames: [],
  samples: (stats) => one(read(stats)),
});
const counter = (name: string, help: string, read: (stats: RealtimeStats) => number): MetricDefinition => ({
  ...gauge(name, help, read),
  type: "counter",
});

/**
 * The metrics, each one concept with a small fixed label set: no label ever holds a user id, an event id
 * or a topic name, so the number of series never grows with the traffic. Gauges are current values,
 * counters (`_total`) count since the process started.
 */
export const METRICS: readonly MetricDefinition[] = [
  {
    name: "pgrealtime_connections",
    help: "Open event streams in this process, by kind: anonymous or signed in (user).",
    type: "gauge",
    labelNames: ["kind"],
    samples: ({ connections }) => [
      { labels: { kind: "anonymous" }, value: connections.anonymous },
      { labels: { kind: "user" }, value: connections.total - connections.anonymous },
    ],
  },
  gauge(
    "pgrealtime_connected_users",
    "Distinct users with at least one open event stream in this process.",
    (stats) => stats.connections.users,
  ),
  gauge(
    "pgrealtime_connected_topics",
    "Distinct topics that open event streams of this process follow.",
    (stats) => stats.connections.topics,
  ),
  counter(
    "pgrealtime_events_received_total",
    "Events this process routed (after onReceive), live and caught up.",
    (stats) => stats.events.received,
  ),
  counter(
    "pgrealtime_events_sent_total",
    "Event frames written to streams (one per stream per event), live and replayed.",
    (stats) => stats.events.sent,
  ),
  counter(
    "pgrealtime_events_dropped_total",
    "Events a hook dropped: onReceive for the process, beforeSend for one stream.",
    (stats) => stats.events.dropped,
  ),
  gauge("pgrealtime_listener_up", "1 while the LISTEN connection receives notifications, else 0.", (stats) =>
    stats.listener.state === "listening" ? 1 : 0,
  ),
  {
    name: "pgrealtime_listener_state",
    help: "The state of the LISTEN connection: 1 for the current state, 0 for the others.",
    type: "gauge",
    labelNames: ["state"],
    samples: ({ listener }) =>
      LISTENER_STATES.map((state) => ({ labels: { state }, value: listener.state === state ? 1 : 0 })),
  },
  counter(
    "pgrealtime_listener_reconnects_total",
    "Times the LISTEN connection listened again after it was lost.",
    (stats) => stats.listener.reconnects,
  ),
  {
    name: "pgrealtime_listener_last_reconnect_timestamp_seconds",
    help: "When the LISTEN connection last listened again after a loss (Unix time); absent before the first.",
    type: "gauge",
    labelNames: [],
    samples: ({ listener }) =>
      listener.lastReconnectAt === null ? [] : one(listener.lastReconnectAt.getTime() / 1000),
  },
  gauge(
    "pgrealtime_replays_running",
    "Resuming streams catching up on stored events now.",
    (stats) => stats.replays.running,
  ),
  counter(
    "pgrealtime_replays_total",
    "Resumes started: streams that connected with a cursor.",
    (stats) => stats.replays.total,
  ),
  counter(
    "pgrealtime_replay_resets_total",
    "Resumes answered with `event: reset` (too far behind, pruned, history changed, failed).",
    (stats) => stats.replays.resets,
  ),
  counter(
    "pgrealtime_activity_written_total",
    "Delivery activity entries written to the database.",
    (stats) => stats.activity.written,
  ),
  counter(
    "pgrealtime_activity_dropped_total",
    "Delivery activity entries dropped because the buffer was full.",
    (stats) => stats.activity.dropped,
  ),
  counter(
    "pgrealtime_activity_failed_batches_total",
    "Batches of delivery activity that failed to be written.",
    (stats) => stats.activity.failed,
  ),
];

const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const OWN_LABELS = new Set(METRICS.flatMap((metric) => metric.labelNames));

/**
 * Checks constant labels given by the application: valid Prometheus label names, string values, none
 * reserved (`__` prefix) nor one of the metrics' own (`kind`, `state`), and none in `taken`.
 *
 * @throws TypeError naming the offending label and what to do.
 */
export function checkLabels(labels: unknown, what: string, taken: readonly string[] = []): void {
  if (typeof labels !== "object" || labels === null || Array.isArray(labels)) {
    throw new TypeError(`${what}: labels must be an object of label names to strings, e.g. { app: "chat" }`);
  }
  for (const [name, value] of Object.entries(labels)) {
    if (!LABEL_NAME.test(name) || name.startsWith("__")) {
      throw new TypeError(
        `${what}: label name ${JSON.stringify(name)} is not a Prometheus label name (a letter or "_", then letters, digits or "_"; no "__" prefix)`,
      );
    }
    if (OWN_LABELS.has(name) || taken.includes(name)) {
      throw new TypeError(`${what}: label "${name}" is pgrealtime's own; use another name`);
    }
    if (typeof value !== "string") {
      throw new TypeError(`${what}: the value of label "${name}" must be a string, got ${typeof value}`);
    }
  }
}

/** A label value as the text format writes it: backslash, double quote and line feed escaped. */
function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => (c === "\n" ? "\\n" : `\\${c}`));
}

/** A HELP text as the text format writes it: backslash and line feed escaped. */
function escapeHelp(text: string): string {
  return text.replace(/[\\\n]/g, (c) => (c === "\n" ? "\\n" : "\\\\"));
}

/** A sample value: the format's `NaN`, `+Inf`, `-Inf`, else the number as JavaScript prints it. */
function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Number.POSITIVE_INFINITY) return "+Inf";
  if (value === Number.NEGATIVE_INFINITY) return "-Inf";
  return String(value);
}

function formatLabels(labels: Record<string, string>): string {
  const pairs = Object.entries(labels).map(([name, value]) => `${name}="${escapeLabelValue(value)}"`);
  return pairs.length === 0 ? "" : `{${pairs.join(",")}}`;
}

/**
 * Renders `stats` in the Prometheus text exposition format 0.0.4 (serve it with
 * {@link PROMETHEUS_CONTENT_TYPE}): for each metric of {@link METRICS} its
 * `# HELP` and `# TYPE` lines, then its samples. `labels` are added to every sample, before the metric's
 * own, e.g. to tell several instances of one process apart.
 *
 * @throws TypeError for a label that is not a Prometheus label name, is reserved, or is one of the
 *   metrics' own (`kind`, `state`), or whose value is not a string.
 * @example
 * prometheusText(realtime.stats(), { realtime: "chat" });
 * // # HELP pgrealtime_connections Open event streams in this process, by kind: …
 * // # TYPE pgrealtime_connections gauge
 * // pgrealtime_connections{realtime="chat",kind="anonymous"} 3
 */
export function prometheusText(stats: RealtimeStats, labels: Record<string, string> = {}): string {
  checkLabels(labels, "prometheusText");
  const lines: string[] = [];
  for (const metric of METRICS) {
    lines.push(`# HELP ${metric.name} ${escapeHelp(metric.help)}`, `# TYPE ${metric.name} ${metric.type}`);
    for (const sample of metric.samples(stats)) {
      lines.push(
        `${metric.name}${formatLabels({ ...labels, ...sample.labels })} ${formatValue(sample.value)}`,
      );
    }
  }
  return `${lines.join("\n")}\n`;
}
