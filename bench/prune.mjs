// `npm run build && node bench/prune.mjs`: what pruning costs publishers. Publishes one event at a time and
// times each `publish` (until it resolves) and each delivery (until a `subscribe` handler of the same
// process has it), first on a quiet table, then while `realtime.prune` deletes 200,000 old events (and
// their activity) in its batches. Uses DATABASE_URL, or an embedded PostgreSQL; works in a fresh database
// it drops at the end.
import { performance } from "node:perf_hooks";
import pg from "pg";
import { createRealtime } from "pgrealtime";
import { createDatabase, dropDatabase, startPostgres } from "../scripts/postgres.mjs";

const OLD_ROWS = 200_000;
const BASELINE_PUBLISHES = 2_000;
const quiet = { debug() {}, info() {}, warn: console.warn, error: console.error };

const server = await startPostgres();
const name = `pgrealtime_bench_prune_${Date.now()}`;
const url = await createDatabase(server.connectionString, name);
try {
  await run(url);
} finally {
  await dropDatabase(server.connectionString, name);
  await server.stop();
}

async function run(connectionString) {
  const realtime = createRealtime({ connectionString, logger: quiet });
  await realtime.migrate();
  const db = new pg.Pool({ connectionString, max: 2 });
  try {
    // Before the process listens: rows committed after that would be caught up (and delivered) as new.
    await seed(db);
    const delivered = new Map();
    realtime.subscribe((event) => delivered.get(event.detail.i)?.());
    await realtime.ready();
    const baseline = await publishWhile(realtime, delivered, (i) => i < BASELINE_PUBLISHES);

    const started = performance.now();
    let pruned;
    const pruning = realtime.prune({ olderThan: "30d" }).then((result) => {
      pruned = { ...result, ms: performance.now() - started };
    });
    const during = await publishWhile(realtime, delivered, () => pruned === undefined);
    await pruning;

    console.log(
      `prune deleted ${pruned.events} events and ${pruned.activity} activity entries in ${(pruned.ms / 1000).toFixed(1)} s; ${during.publish.length} events published meanwhile`,
    );
    console.log(`${"latency (ms)".padEnd(40)}    p50     p99     max`);
    for (const [label, samples] of [
      ["publish, quiet table", baseline.publish],
      ["publish, during the prune", during.publish],
      ["publish → subscribe, quiet table", baseline.delivery],
      ["publish → subscribe, during the prune", during.delivery],
    ]) {
      const [p50, p99, max] = [0.5, 0.99, 1].map((q) => percentile(samples, q).toFixed(2).padStart(7));
      console.log(`${label.padEnd(40)}${p50} ${p99} ${max}`);
    }
  } finally {
    await db.end();
    await realtime.close();
  }
}

/** 200,000 events of 60 days ago, each with one `sent` activity entry, inserted the quick way (in SQL). */
async function seed(db) {
  await db.query(`INSERT INTO pgrealtime.events (type, scope, user_id, detail, created_at)
    SELECT 'old', 'user', 'u' || (n % 1000), jsonb_build_object('n', n), now() - interval '60 days'
    FROM generate_series(1, ${OLD_ROWS}) n`);
  await db.query(`INSERT INTO pgrealtime.activity (event_id, kind, process, user_id, connections)
    SELECT id, 'sent', 'bench', user_id, 1 FROM pgrealtime.events WHERE type = 'old'`);
  await db.query("VACUUM ANALYZE pgrealtime.events, pgrealtime.activity");
}

/** Publishes one event at a time while `more(i)` holds; the time of each publish and of its delivery. */
async function publishWhile(realtime, delivered, more) {
  const publish = [];
  const delivery = [];
  for (let i = 0; more(i); i++) {
    const start = performance.now();
    let got;
    const arrived = new Promise((resolve) => (got = resolve));
    delivered.set(i, got);
    await realtime.publishGlobal({ type: "bench", detail: { i } });
    publish.push(performance.now() - start);
    await arrived;
    delivered.delete(i);
    delivery.push(performance.now() - start);
  }
  return { publish, delivery };
}

function percentile(samples, q) {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}
