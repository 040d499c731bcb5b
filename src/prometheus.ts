// `pgrealtime/prometheus`: the metrics of src/metrics.ts in an application's prom-client registry. Only this
// subpath imports prom-client (an optional peer dependency): the rest of the package never loads it.
import { Counter, register as defaultRegistry, Gauge, type Registry } from "prom-client";
import { refuseUnknownKeys } from "./event.js";
import { checkLabels, METRICS, type MetricDefinition } from "./metrics.js";
import type { RealtimeStats } from "./types.js";

/** The label that tells the instances reporting into one registry apart. */
const INSTANCE_LABEL = "realtime";

/** Options of {@link registerMetrics}. */
export interface RegisterMetricsOptions {
  /** The prom-client registry to report into. Default: prom-client's default `register`. */
  registry?: Registry;
  /**
   * Constant labels of this instance's series. `realtime` names the instance (default: `"1"`, `"2"`, …
   * in the order instances are first registered in this process); any others are added as they are, and
   * every instance registered into one registry must give the same label names.
   */
  labels?: Record<string, string>;
}

/** What registerMetrics needs of an instance: the object `createRealtime` returned. */
export interface MetricsSource {
  stats(): RealtimeStats;
}

interface Entry {
  source: MetricsSource;
  labels: Record<string, string>;
}

/** The one set of pgrealtime metrics of a registry and the instances they report. */
interface RegistryMetrics {
  labelNames: string[];
  entries: Set<Entry>;
  metrics: Array<{ name: string; metric: Counter | Gauge }>;
}

const perRegistry = new WeakMap<Registry, RegistryMetrics>();
const instanceNames = new WeakMap<MetricsSource, string>();
let instancesNamed = 0;

/**
 * Reports `realtime.stats()` through prom-client: gauges and counters (the same names as the admin page's
 * `/admin/metrics`, e.g. `pgrealtime_connections`, `pgrealtime_events_sent_total`) whose values are read
 * at collect time, when the registry is scraped. Nothing is counted twice and nothing runs between scrapes.
 *
 * Several instances in one process never collide: prom-client refuses a metric name registered twice in
 * one registry, so each registry gets one set of metrics that reports every instance registered into it,
 * each under the label `realtime` (give `labels: { realtime: "chat" }` for a stable name; the default
 * numbers instances in the order they are first registered). The label is not called `instance` because
 * Prometheus sets `instance` on every scraped series itself (the target's address) and would rename ours
 * to `exported_instance`. No label holds a user id, an event id or a topic name.
 *
 * @returns a function that removes this instance's series (and the metrics, after the last instance of
 *   the registry); calling it again does nothing.
 * @throws TypeError when the instance is already registered in the registry, another instance there has
 *   the same `realtime` label, the label names differ from those of the instances already there, a label
 *   is malformed (see `prometheusText`), or the registry holds a `pgrealtime_` metric of its own.
 * @example
 * import { register } from "prom-client";
 * import { registerMetrics } from "pgrealtime/prometheus";
 * const unregister = registerMetrics(realtime, { labels: { realtime: "chat" } });
 * app.get("/metrics", async (req, res) => res.type(register.contentType).send(await register.metrics()));
 */
export function registerMetrics(realtime: MetricsSource, options: RegisterMetricsOptions = {}): () => void {
  if (typeof realtime?.stats !== "function") {
    throw new TypeError("registerMetrics: expected the object createRealtime() returned");
  }
  refuseUnknownKeys(options, ["registry", "labels"], "registerMetrics", "option");
  const registry = options.registry ?? defaultRegistry;
  if (typeof registry?.getSingleMetric !== "function") {
    throw new TypeError("registerMetrics: registry must be a prom-client Registry (e.g. new Registry())");
  }
  checkLabels(options.labels ?? {}, "registerMetrics");
  const labels = {
    [INSTANCE_LABEL]: options.labels?.[INSTANCE_LABEL] ?? instanceName(realtime),
    ...options.labels,
  };
  const set = metricsOf(registry, Object.keys(labels).sort());
  for (const entry of set.entries) {
    if (entry.source === realtime) {
      throw new TypeError(
        "registerMetrics: this instance is already registered in this registry; call the function the first registerMetrics returned to remove it",
      );
    }
    if (entry.labels[INSTANCE_LABEL] === labels[INSTANCE_LABEL]) {
      throw new TypeError(
        `registerMetrics: another instance already reports as ${INSTANCE_LABEL}="${labels[INSTANCE_LABEL]}" in this registry; give each its own labels.${INSTANCE_LABEL}`,
      );
    }
  }
  const entry: Entry = { source: realtime, labels };
  set.entries.add(entry);
  return () => {
    if (!set.entries.delete(entry) || set.entries.size > 0) return;
    for (const { name, metric } of set.metrics) {
      if (registry.getSingleMetric(name) === metric) registry.removeSingleMetric(name);
    }
    perRegistry.delete(registry);
  };
}

function instanceName(realtime: MetricsSource): string {
  let name = instanceNames.get(realtime);
  if (name === undefined) {
    instancesNamed += 1;
    name = String(instancesNamed);
    instanceNames.set(realtime, name);
  }
  return name;
}

/** The registry's set of metrics, created (and registered) with the first instance. */
function metricsOf(registry: Registry, labelNames: string[]): RegistryMetrics {
  const existing = perRegistry.get(registry);
  if (existing) {
    if (existing.labelNames.join() !== labelNames.join()) {
      throw new TypeError(
        `registerMetrics: every instance in one registry needs the same label names: the registered ones have ${existing.labelNames.join(", ")}, this one ${labelNames.join(", ")}`,
      );
    }
    // After the application's `registry.clear()`, our metrics are put back.
    for (const { name, metric } of existing.metrics) {
      if (registry.getSingleMetric(name) !== metric) registry.registerMetric(metric);
    }
    return existing;
  }
  const clash = METRICS.find((definition) => registry.getSingleMetric(definition.name) !== undefined);
  if (clash) {
    throw new TypeError(
      `registerMetrics: the registry already has a metric ${clash.name} that registerMetrics did not create (another copy of pgrealtime?)`,
    );
  }
  const set: RegistryMetrics = { labelNames, entries: new Set(), metrics: [] };
  set.metrics = METRICS.map((definition) => ({
    name: definition.name,
    metric: createMetric(definition, registry, set),
  }));
  perRegistry.set(registry, set);
  return set;
}

/** One prom-client metric whose values are read from every instance of `set` when it is collected. */
function createMetric(
  definition: MetricDefinition,
  registry: Registry,
  set: RegistryMetrics,
): Counter | Gauge {
  const config = {
    name: definition.name,
    help: definition.help,
    labelNames: [...set.labelNames, ...definition.labelNames],
    registers: [registry],
  };
  const samples = function* () {
    for (const { source, labels } of set.entries) {
      for (const sample of definition.samples(source.stats())) {
        yield { labels: { ...labels, ...sample.labels }, value: sample.value };
      }
    }
  };
  if (definition.type === "counter") {
    return new Counter({
      ...config,
      // A counter is set to the instance's own count at each scrape: reset, then one increment by it.
      collect() {
        this.reset();
        for (const { labels, value } of samples()) this.inc(labels, value);
      },
    });
  }
  return new Gauge({
    ...config,
    collect() {
      this.reset();
      for (const { labels, value } of samples()) this.set(labels, value);
    },
  });
}
