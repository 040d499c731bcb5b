// pgrealtime/prometheus with real instances: two in one process, reported into one prom-client registry
// and into the default one, read after a real publish reached a real SSE stream.
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { Gauge, Registry, register } from "prom-client";
import { describe, expect, it } from "vitest";
import type { Realtime } from "../src/index.js";
import { prometheusText } from "../src/metrics.js";
import { type RegisterMetricsOptions, registerMetrics } from "../src/prometheus.js";
import { cleanup } from "./support/observe.js";
import { servedRealtime } from "./support/server.js";
import { openStream } from "./support/sse.js";

/** Every sample of `text` whose labels include `where`, as `name{other labels}` → value. */
function samples(text: string, where: Record<string, string> = {}): Record<string, number> {
  const found: Record<string, number> = {};
  for (const family of parsePrometheusTextFormat(text)) {
    for (const metric of family.metrics) {
      const labels = metric.labels ?? {};
      if (!Object.entries(where).every(([name, value]) => labels[name] === value)) continue;
      const rest = Object.entries(labels).filter(([name]) => !(name in where));
      found[`${family.name}{${rest.map(([k, v]) => `${k}=${v}`).join(",")}}`] = Number(metric.value);
    }
  }
  return found;
}

/** Every label name and value in `text`. */
function labelsIn(text: string): { names: Set<string>; values: Set<string> } {
  const names = new Set<string>();
  const values = new Set<string>();
  for (const family of parsePrometheusTextFormat(text)) {
    for (const metric of family.metrics) {
      for (const [name, value] of Object.entries(metric.labels ?? {})) {
        names.add(name);
        values.add(value);
      }
    }
  }
  return { names, values };
}

/** Two served instances (activity off: its batches would change the counters between two reads). */
async function twoInstances() {
  const a = await servedRealtime({ activity: false });
  const b = await servedRealtime({ activity: false });
  return { a, b };
}

/** Registers and removes the registration when the test ends (the default registry is process-wide). */
function registered(realtime: Realtime, options: RegisterMetricsOptions): () => void {
  const unregister = registerMetrics(realtime, options);
  cleanup("unregister metrics", unregister);
  return unregister;
}

describe("pgrealtime/prometheus", () => {
  it("reports two instances into one registry and the default one, with the values of stats()", async () => {
    const { a, b } = await twoInstances();
    const registry = new Registry();
    registered(a.realtime, { registry, labels: { realtime: "a", app: "test" } });
    registered(b.realtime, { registry, labels: { realtime: "b", app: "test" } });
    registered(a.realtime, {});
    registered(b.realtime, {});

    const stream = await openStream(`${a.server.url}/realtime/events?user=alice`);
    const event = await a.realtime.publish({ userId: "alice", type: "note", detail: { n: 1 } });
    await stream.until((s) => s.events.some((e) => e.id === event.id), "the published event");

    const text = await registry.metrics();
    const ofA = samples(text, { realtime: "a", app: "test" });
    expect(ofA).toEqual(samples(prometheusText(a.realtime.stats())));
    expect(samples(text, { realtime: "b", app: "test" })).toEqual(
      samples(prometheusText(b.realtime.stats())),
    );
    expect(ofA["pgrealtime_connections{kind=user}"]).toBe(1);
    expect(ofA["pgrealtime_events_sent_total{}"]).toBeGreaterThanOrEqual(1);
    expect(ofA["pgrealtime_listener_up{}"]).toBe(1);
    expect(samples(text, { realtime: "b", app: "test" })["pgrealtime_connections{kind=user}"]).toBe(0);

    // No label names a user, an event or anything else that grows with the traffic.
    const { names, values } = labelsIn(text);
    expect([...names].sort()).toEqual(["app", "kind", "realtime", "state"]);
    expect(values.has("alice")).toBe(false);
    expect(values.has(event.id)).toBe(false);
    expect(text).not.toContain("alice");

    // The default registry holds both too, under the names they were first given in this process.
    const defaults = await register.metrics();
    const reported = new Set(
      parsePrometheusTextFormat(defaults)
        .filter((family) => family.name === "pgrealtime_events_sent_total")
        .flatMap((family) => family.metrics.map((metric) => metric.labels?.realtime)),
    );
    expect(reported.size).toBe(2);
    for (const name of reported) {
      expect(name).toMatch(/^[1-9][0-9]*$/);
    }
  });

  it("removes an instance's series when unregistered, and the metrics after the last one", async () => {
    const { a, b } = await twoInstances();
    const registry = new Registry();
    const unregisterA = registerMetrics(a.realtime, { registry, labels: { realtime: "a" } });
    const unregisterB = registered(b.realtime, { registry, labels: { realtime: "b" } });
    unregisterA();
    unregisterA();
    let text = await registry.metrics();
    expect(Object.keys(samples(text, { realtime: "a" }))).toEqual([]);
    expect(samples(text, { realtime: "b" })["pgrealtime_listener_up{}"]).toBe(1);

    unregisterB();
    expect(registry.getSingleMetric("pgrealtime_connections")).toBeUndefined();
    expect(await registry.metrics()).not.toContain("pgrealtime_");

    // Registering again after the last one left creates the metrics anew.
    registered(a.realtime, { registry, labels: { realtime: "a" } });
    text = await registry.metrics();
    expect(samples(text, { realtime: "a" })["pgrealtime_listener_up{}"]).toBe(1);
  });

  it("refuses a second registration that would collide, and a clashing metric of another origin", async () => {
    const { a, b } = await twoInstances();
    const registry = new Registry();
    registered(a.realtime, { registry, labels: { realtime: "a" } });
    expect(() => registerMetrics(a.realtime, { registry })).toThrow(/already registered in this registry/);
    expect(() => registerMetrics(b.realtime, { registry, labels: { realtime: "a" } })).toThrow(
      /already reports as realtime="a"/,
    );
    expect(() => registerMetrics(b.realtime, { registry, labels: { realtime: "b", app: "x" } })).toThrow(
      /same label names: the registered ones have realtime, this one app, realtime/,
    );
    expect(() => registerMetrics(b.realtime, { registry, labels: { kind: "x" } })).toThrow(
      /label "kind" is pgrealtime's own/,
    );
    expect(() => registerMetrics(b.realtime, { registry, lables: {} } as never)).toThrow(
      /unknown option "lables"/,
    );

    const foreign = new Registry();
    new Gauge({ name: "pgrealtime_connections", help: "not ours", registers: [foreign] });
    expect(() => registerMetrics(b.realtime, { registry: foreign })).toThrow(
      /already has a metric pgrealtime_connections that registerMetrics did not create/,
    );

    // After the application clears the registry, the next registration puts the metrics back.
    registry.clear();
    registered(b.realtime, { registry, labels: { realtime: "b" } });
    expect(Object.keys(samples(await registry.metrics(), { realtime: "a" }))).not.toEqual([]);
  });
});
