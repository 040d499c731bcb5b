// Retention: the scheduler's lock, failures and stop against a real PostgreSQL (the prune it calls is the
// test's own here), then the `retention` option of real instances deleting real rows.
import pg from "pg";
import { describe, expect, it } from "vitest";
import { Retention, type RetentionOptions, retentionLockName } from "../src/retention.js";
import type { PruneResult } from "../src/types.js";
import { databaseUrl, filePool, freshSchema } from "./support/database.js";
import { cleanup, eventually, recordingLogger } from "./support/observe.js";

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
    await eventually(async () => (await lockHolders(lockName)).length === 1, "the lock held by the run");
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
    await eventually(async () => (await lockHolders(lockName)).length === 0, "the session to end");
    go.resolve();
    expect((await running).outcome).toBe("pruned");
    expect(await retention.runNow()).toEqual({ outcome: "pruned", events: 1, activity: 0 });
  });

  it("runs by itself shortly after start", async () => {
    const { calls, prune } = counted({ events: 0, activity: 0 });
    const { retention } = scheduler(prune, { firstRunMs: 20 });
    retention.start();
    await eventually(() => calls.length === 1, "the first run");
  });
});
