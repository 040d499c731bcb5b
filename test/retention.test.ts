// Retention: the scheduler's lock, failures and stop against a real PostgreSQL (the prune it calls is the
// test's own here), then the `retention` option of real instances deleting real rows.
import pg from "pg";
import { describe, expect, it, vi } from "vitest";
import type { Realtime } from "../src/index.js";
import {
  Retention,
  type RetentionOptions,
  type RetentionRun,
  retentionLockName,
  retentionOf,
} from "../src/retention.js";
import type { PruneResult } from "../src/types.js";
import { databaseUrl, filePool, freshSchema } from "./support/database.js";
import { cleanup, recordingLogger } from "./support/observe.js";
import { migratedRealtime, servedRealtime } from "./support/server.js";
import { openStream } from "./support/sse.js";
import { cursorOf } from "./support/wire.js";

const files = filePool(4);

/** A session of the test's own holding the advisory lock `name` until `release()`. */
async function holdLock(name: string) {
  const client = new pg.Client({ connectionString: databaseUrl() });
  client.on("error", () => {});
  await client.connect();
  cleanup("lock holder", () => client.end());
  await client.query("SELECT pg_advisory_lock(hashtextextended($1, 0))", [name]);
  return {
    pid: (client as pg.Client & { processID: number }).processID,
    release: () => client.query("SELECT pg_advisory_unlock(hashtextextended($1, 0))", [name]),
  };
}

/** The backend pids holding the advisory lock `name` (pg_locks splits its 64-bit key in two). */
async function lockHolders(name: string): Promise<number[]> {
  const { rows } = await files.pool.query(
    `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1
       AND ((classid::bigint << 32) | objid::bigint) = hashtextextended($1, 0)`,
    [name],
  );
  return rows.map((row) => row.pid);
}

/** A promise with its resolve, for a prune that ends when the test says. */
function deferred<T>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** A scheduler on the file's pool with a prune of the test's own; stopped when the test ends. */
function scheduler(prune: RetentionOptions["prune"], changes: Partial<RetentionOptions> = {}) {
  const logger = recordingLogger();
  const lockName = changes.lockName ?? retentionLockName(freshSchema("lock"), "events");
  const retention = new Retention({ retention: "1d", pool: files.pool, lockName, prune, logger, ...changes });
  cleanup("retention", () => retention.stop());
  return { retention, logger, lockName };
}

const counted = (result: PruneResult) => {
  const calls: number[] = [];
  const prune = async (olderThanMs: number) => {
    calls.push(olderThanMs);
    return result;
  };
  return { calls, prune };
};

describe("the retention scheduler", () => {
  it("prunes only with the advisory lock, skips while another session holds it, then lets it go", async () => {
    const { calls, prune } = counted({ events: 2, activity: 3 });
    const { retention, logger, lockName } = scheduler(prune);
    const held = await holdLock(lockName);
    expect(await retention.runNow()).toEqual({ outcome: "skipped" });
    expect(calls).toEqual([]);

    await held.release();
    expect(await retention.runNow()).toEqual({ outcome: "pruned", events: 2, activity: 3 });
    expect(calls).toEqual([86_400_000]);
    expect(logger.infos.map((args) => args[0])).toContainEqual({ retention: "1d", events: 2, activity: 3 });
    // The lock was released and the client returned to the pool.
    expect(await lockHolders(lockName)).toEqual([]);
    expect(files.pool.totalCount).toBe(files.pool.idleCount);
  });

  it("lets one of two schedulers on one table prune at a time; the other skips", async () => {
    const first = deferred<PruneResult>();
    const started = deferred<void>();
    const a = scheduler(() => {
      started.resolve();
      return first.promise;
    });
    const other = counted({ events: 1, activity: 0 });
    const b = scheduler(other.prune, { lockName: a.lockName });

    const running = a.retention.runNow();
    await started.promise;
    expect(await lockHolders(a.lockName)).toHaveLength(1);
    expect(await b.retention.runNow()).toEqual({ outcome: "skipped" });
    first.resolve({ events: 5, activity: 0 });
    expect(await running).toEqual({ outcome: "pruned", events: 5, activity: 0 });
    expect(await b.retention.runNow()).toEqual({ outcome: "pruned", events: 1, activity: 0 });
    expect(other.calls).toHaveLength(1);
  });

  it("logs a failed prune at warn, releases the lock and prunes at the next run", async () => {
    let fail = true;
    const { retention, logger, lockName } = scheduler(async () => {
      if (fail) throw new Error("statement timeout");
      return { events: 1, activity: 1 };
    });
    const failed = await retention.runNow();
    expect(failed.outcome).toBe("failed");
    expect(logger.warns.map((args) => (args[0] as { err: Error }).err.message)).toEqual([
      "statement timeout",
    ]);
    expect(await lockHolders(lockName)).toEqual([]);
    fail = false;
    expect(await retention.runNow()).toEqual({ outcome: "pruned", events: 1, activity: 1 });
  });

  it("stop() asks the prune to stop after its batch and waits for it; no run after", async () => {
    const started = deferred<AbortSignal>();
    const batchDone = deferred<void>();
    let calls = 0;
    const { retention, lockName } = scheduler(async (_olderThanMs, signal) => {
      calls += 1;
      started.resolve(signal);
      await batchDone.promise;
      return { events: 1000, activity: 0 };
    });
    const running = retention.runNow();
    const signal = await started.promise;
    let stopped = false;
    const stopping = retention.stop().then(() => {
      stopped = true;
    });
    expect(signal.aborted).toBe(true);
    // Still in its batch: stop() has not resolved, the lock is still held.
    expect(await lockHolders(lockName)).toHaveLength(1);
    expect(stopped).toBe(false);
    batchDone.resolve();
    await stopping;
    expect(await running).toEqual({ outcome: "pruned", events: 1000, activity: 0 });
    expect(await lockHolders(lockName)).toEqual([]);
    expect(await retention.runNow()).toEqual({ outcome: "skipped" });
    expect(calls).toBe(1);
  });

  it("survives losing its lock's connection during a run, and the next run gets the lock", async () => {
    const started = deferred<void>();
    const go = deferred<void>();
    const { retention, lockName } = scheduler(async () => {
      started.resolve();
      await go.promise;
      return { events: 1, activity: 0 };
    });
    const running = retention.runNow();
    await started.promise;
    const [pid] = await lockHolders(lockName);
    await files.pool.query("SELECT pg_terminate_backend($1)", [pid]);
    await vi.waitFor(async () => expect(await lockHolders(lockName)).toEqual([]), { timeout: 5_000 });
    go.resolve();
    expect((await running).outcome).toBe("pruned");
    expect(await retention.runNow()).toEqual({ outcome: "pruned", events: 1, activity: 0 });
  });

  it("runs by itself shortly after start", async () => {
    const { calls, prune } = counted({ events: 0, activity: 0 });
    const { retention } = scheduler(prune, { firstRunMs: 20 });
    retention.start();
    await vi.waitFor(() => expect(calls).toHaveLength(1), { timeout: 5_000 });
  });
});

/** The instance's scheduler, run at once (the interval is an hour with `retention: "1d"`). */
function runNow(realtime: Realtime): Promise<RetentionRun> {
  const retention = retentionOf(realtime);
  if (!retention) throw new Error("the instance has no retention scheduler");
  return retention.runNow();
}

/** Dates events back by two days, past the tests' `retention: "1d"`. */
async function age(schema: string, ids: string[]): Promise<void> {
  await files.pool.query(
    `UPDATE "${schema}".events SET created_at = now() - interval '2 days' WHERE id = ANY($1::bigint[])`,
    [ids],
  );
}

/** `count` events of two days ago, inserted in one statement. */
async function seedOld(schema: string, count: number): Promise<void> {
  await files.pool.query(
    `INSERT INTO "${schema}".events (type, scope, user_id, detail, created_at)
     SELECT 'old', 'user', 'u' || (n % 100), jsonb_build_object('n', n), now() - interval '2 days'
     FROM generate_series(1, $1::int) n`,
    [count],
  );
}

async function count(schema: string, table: "events" | "activity", where = "true"): Promise<number> {
  const { rows } = await files.pool.query(
    `SELECT count(*)::int AS n FROM "${schema}".${table} WHERE ${where}`,
  );
  return rows[0].n;
}

async function ids(schema: string, table: "events" | "activity", column = "id"): Promise<string[]> {
  const { rows } = await files.pool.query(`SELECT DISTINCT ${column}::text AS id FROM "${schema}".${table}`);
  return rows.map((row) => row.id).sort();
}

describe("the retention option", () => {
  it("deletes the events older than the retention and their activity, one process at a time", async () => {
    const schema = freshSchema("retain");
    const lockName = retentionLockName(schema, "events");
    // Held from the start, so that no run of either instance prunes before the test lets it.
    const held = await holdLock(lockName);
    const a = await servedRealtime({ schema, retention: "1d" });
    const { realtime: b } = await migratedRealtime({ schema, retention: "1d" });
    cleanup("second instance", () => b.close());
    await b.ready();

    const stream = await openStream(`${a.server.url}/realtime/events?user=alice`);
    const published = [];
    // From both processes: each prunes what the other published as well.
    for (let n = 0; n < 5; n++) {
      const publisher = n % 2 === 0 ? a.realtime : b;
      published.push(await publisher.publish({ userId: "alice", type: "note", detail: { n } }));
    }
    const all = published.map((e) => e.id).sort();
    await stream.until((s) => s.events.length === 5, "the five events");
    // Each event dispatched by both processes and sent by the one serving the stream: 15 entries.
    await vi.waitFor(async () => expect(await count(schema, "activity")).toBe(15), { timeout: 10_000 });
    expect(await ids(schema, "activity", "event_id")).toEqual(all);
    const old = published.slice(0, 3).map((e) => e.id);
    await age(schema, old);

    expect([await runNow(a.realtime), await runNow(b)]).toEqual([
      { outcome: "skipped" },
      { outcome: "skipped" },
    ]);
    expect(await ids(schema, "events")).toEqual(all);

    // A row lock of the test's own holds the winner inside its first batch, so both runs overlap.
    const blocker = await files.pool.connect();
    cleanup("blocker", () => blocker.release());
    await blocker.query("BEGIN");
    await blocker.query(`SELECT 1 FROM "${schema}".activity WHERE event_id = $1 FOR UPDATE`, [old[0]]);
    await held.release();
    const runs = [runNow(a.realtime), runNow(b)];
    expect(await Promise.race(runs)).toEqual({ outcome: "skipped" });
    expect(await lockHolders(lockName)).toHaveLength(1);
    await blocker.query("COMMIT");
    const outcomes = await Promise.all(runs);
    expect(outcomes).toContainEqual({ outcome: "pruned", events: 3, activity: 9 });
    expect(outcomes).toContainEqual({ outcome: "skipped" });

    const kept = published
      .slice(3)
      .map((e) => e.id)
      .sort();
    expect(await ids(schema, "events")).toEqual(kept);
    expect(await ids(schema, "activity", "event_id")).toEqual(kept);
  });

  it("is scheduled every tenth of the retention (at most hourly), and only with a retention; refused without storage", async () => {
    const on = await migratedRealtime({ retention: "2h" });
    const off = await migratedRealtime();
    for (const { realtime } of [on, off]) cleanup("instance", () => realtime.close());
    expect(retentionOf(on.realtime)?.intervalMs).toBe(720_000);
    expect(retentionOf(off.realtime)).toBeUndefined();
    await expect(migratedRealtime({ storage: false, retention: "2h" })).rejects.toThrow(/storage: false/);
  });

  it("sends a client resuming from below a pruned id a reset with reason pruned; a recent one resumes", async () => {
    const { realtime, server, schema } = await servedRealtime({ retention: "1d" });
    const first = await openStream(`${server.url}/realtime/events?user=alice`);
    const [e1, e2, e3] = [
      await realtime.publish({ userId: "alice", type: "note", detail: { n: 1 } }),
      await realtime.publish({ userId: "alice", type: "note", detail: { n: 2 } }),
      await realtime.publish({ userId: "alice", type: "note", detail: { n: 3 } }),
    ];
    await first.until((s) => s.events.length === 3, "three events");
    const [below, recent] = [cursorOf(first, e1.id), cursorOf(first, e3.id)];
    first.close();
    await age(schema, [e2.id]);
    expect(await runNow(realtime)).toMatchObject({ outcome: "pruned", events: 1 });

    const resumed = await openStream(`${server.url}/realtime/events?user=alice`, below);
    const reset = await resumed.next("reset");
    expect(JSON.parse(reset.data)).toEqual({ reason: "pruned" });
    const live = await openStream(`${server.url}/realtime/events?user=alice`, recent);
    const e4 = await realtime.publish({ userId: "alice", type: "note", detail: { n: 4 } });
    await live.until((s) => s.events.some((e) => e.id === e4.id), "the live event");
    expect(live.messages.some((m) => m.event === "reset")).toBe(false);
  });

  it("keeps publishing and delivering while it deletes many rows, and close() stops it after a batch", async () => {
    const { realtime, server, schema } = await servedRealtime({ retention: "1d" });
    await seedOld(schema, 50_000);
    const stream = await openStream(`${server.url}/realtime/events`);
    let done = false;
    const run = runNow(realtime).finally(() => {
      done = true;
    });
    const during: string[] = [];
    for (let n = 0; !done; n++) {
      const event = await realtime.publishGlobal({ type: "during", detail: { n } });
      if (!done) during.push(event.id);
    }
    expect(await run).toEqual({ outcome: "pruned", events: 50_000, activity: 0 });
    // Published while the prune ran, each delivered.
    expect(during.length).toBeGreaterThan(10);
    await stream.until((s) => during.every((id) => s.events.some((e) => e.id === id)), "every event");

    await seedOld(schema, 50_000);
    const stopped = runNow(realtime);
    await vi.waitFor(async () => expect(await count(schema, "events", "type = 'old'")).toBeLessThan(50_000), {
      timeout: 10_000,
      interval: 5,
    });
    await realtime.close();
    const { events } = (await stopped) as { events: number };
    expect(events % 1000).toBe(0);
    expect(events).toBeLessThan(50_000);
    expect(await count(schema, "events", "type = 'old'")).toBe(50_000 - events);
  });
});
