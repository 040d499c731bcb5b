// The `retention` option: every interval, one process of the installation deletes the events older than the
// retention (and their activity). Which one is decided by a non-blocking advisory lock: a process that does
// not get it skips the run, since another is pruning. The deletes themselves are `realtime.prune`'s
// batches, each its own short transaction, so publishers and streams are never held up.
import type { PoolClient } from "pg";
import { parseDuration } from "./duration.js";
import { RETENTION_SQL } from "./statements.js";
import type { Logger, PruneResult } from "./types.js";

/** Bounds of the interval between two runs (a tenth of the retention). */
const MIN_INTERVAL_MS = 60_000;
const MAX_INTERVAL_MS = 3_600_000;
/** The first run comes this long after start, plus up to as much again at random (processes start together). */
const FIRST_RUN_MS = 10_000;

/** Options of {@link Retention}. */
export interface RetentionOptions {
  /** The `retention` option: `"30d"`, `"12h"`, `"90m"`. */
  retention: string;
  /** The instance's pool: each run checks one client out for the lock and returns it after. */
  pool: { connect(): Promise<PoolClient> };
  /** The name the advisory lock is derived from: {@link retentionLockName} of the schema and table. */
  lockName: string;
  /**
   * Deletes the events created more than `olderThanMs` milliseconds ago and their activity, in batches
   * (`realtime.prune`'s); it stops after the batch it is in once `signal` is aborted.
   */
  prune(olderThanMs: number, signal: AbortSignal): Promise<PruneResult>;
  logger: Logger;
  /** Milliseconds before the first run. Default 10000 to 20000 (random), so processes started together spread out. */
  firstRunMs?: number;
}

/** What one run did: deleted (`pruned`), found the lock taken (`skipped`), or failed (logged). */
export type RetentionRun =
  | { outcome: "pruned"; events: number; activity: number }
  | { outcome: "skipped" }
  | { outcome: "failed"; error: unknown };

/**
 * The advisory lock name of the retention of one table: one pruning process per table, whichever
 * processes and instances share it.
 */
export function retentionLockName(schema: string, table: string): string {
  return `pgrealtime.retention:${schema}.${table}`;
}

/** Milliseconds between runs for a retention: a tenth of it, at least 1 minute, at most 1 hour. */
export function retentionIntervalMs(retentionMs: number): number {
  return Math.min(MAX_INTERVAL_MS, Math.max(MIN_INTERVAL_MS, Math.floor(retentionMs / 10)));
}

/**
 * The scheduler behind the `retention` option, started by the instance when storage is on and
 * `retention` is not `false`. Every {@link retentionIntervalMs} (the first run shortly after start;
 * timers unref'd, so it never keeps a process alive) it checks one client out of the pool, tries a
 * session advisory lock on it (`pg_try_advisory_lock`, never waiting) and, if it got it, calls `prune`;
 * it logs the counts (info when something was deleted, else debug) and a failure at warn, and goes on at
 * the next interval. Runs of one scheduler never overlap.
 *
 * Tests do not wait for the interval: {@link Retention.runNow} runs at once, and {@link retentionOf} finds
 * the scheduler of an instance. Both are internal: the package exports neither.
 *
 * @example
 * const retention = new Retention({
 *   retention: "30d", pool, logger, lockName: retentionLockName("pgrealtime", "events"),
 *   prune: (olderThanMs, signal) => history.prune(olderThanMs, null, false, signal),
 * });
 * retention.start(); … await retention.stop();
 */
export class Retention {
  /** Milliseconds between two runs. */
  readonly intervalMs: number;
  private readonly retentionMs: number;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<RetentionRun> | undefined;
  private readonly stopping = new AbortController();

  /** @throws TypeError when `retention` is not a duration like `"30d"`. */
  constructor(private readonly options: RetentionOptions) {
    this.retentionMs = parseDuration(options.retention, "retention");
    this.intervalMs = retentionIntervalMs(this.retentionMs);
  }

  /** Schedules the first run; idempotent. */
  start(): void {
    if (this.timer !== undefined || this.stopping.signal.aborted) return;
    this.schedule(this.options.firstRunMs ?? FIRST_RUN_MS + Math.random() * FIRST_RUN_MS);
  }

  /**
   * Runs now (or joins the run in progress) and resolves with what it did; never rejects. The next
   * scheduled run stays where it was. Internal: for tests, which cannot wait for the interval.
   */
  runNow(): Promise<RetentionRun> {
    if (this.stopping.signal.aborted) return Promise.resolve({ outcome: "skipped" });
    this.running ??= this.run().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** Stops scheduling; resolves once a running prune has finished the batch it is in. Idempotent. */
  async stop(): Promise<void> {
    this.stopping.abort();
    clearTimeout(this.timer);
    await this.running;
  }

  private schedule(delayMs: number): void {
    this.timer = setTimeout(() => {
      void this.runNow().then(() => {
        if (!this.stopping.signal.aborted) this.schedule(this.intervalMs);
      });
    }, delayMs);
    this.timer.unref();
  }

  private async run(): Promise<RetentionRun> {
    const { logger, lockName, retention } = this.options;
    let client: PoolClient;
    try {
      client = await this.options.pool.connect();
    } catch (error) {
      return this.failed(error);
    }
    // A checked-out client has no error listener of the pool's: without one, losing its connection
    // during the run would be an uncaught "error" event.
    let lost: unknown;
    const onError = (error: unknown) => {
      lost = error;
    };
    client.on("error", onError);
    let locked = false;
    try {
      locked = (await client.query(RETENTION_SQL.tryLock, [lockName])).rows[0]?.locked === true;
      if (!locked) {
        logger.debug({ retention }, "pgrealtime: retention skipped; another process is pruning");
        return { outcome: "skipped" };
      }
      const { events, activity } = await this.options.prune(this.retentionMs, this.stopping.signal);
      logger[events > 0 || activity > 0 ? "info" : "debug"](
        { retention, events, activity },
        `pgrealtime: retention deleted ${events} events and ${activity} activity entries older than ${retention}`,
      );
      return { outcome: "pruned", events, activity };
    } catch (error) {
      return this.failed(error);
    } finally {
      const keep = locked && lost === undefined ? await this.unlock(client) : lost === undefined;
      if (keep) {
        client.removeListener("error", onError);
        client.release();
      } else {
        // Lost, or its lock may still be held: destroyed (still listened to), not handed to the pool's next user.
        client.release(true);
      }
    }
  }

  /** Releases the lock; whether the client can go back to the pool. */
  private async unlock(client: PoolClient): Promise<boolean> {
    try {
      const unlocked =
        (await client.query(RETENTION_SQL.unlock, [this.options.lockName])).rows[0]?.unlocked === true;
      if (!unlocked) {
        // The lock was taken on another server session: the pool goes through a transaction pooler.
        this.options.logger.warn(
          { lockName: this.options.lockName },
          "pgrealtime: retention could not release its advisory lock (is the pool behind a transaction-pooling PgBouncer? retention needs session connections)",
        );
      }
      return unlocked;
    } catch {
      return false;
    }
  }

  private failed(error: unknown): RetentionRun {
    if (this.stopping.signal.aborted) {
      this.options.logger.debug({ err: error }, "pgrealtime: retention run ended by close()");
    } else {
      this.options.logger.warn(
        { err: error },
        `pgrealtime: retention failed; trying again in ${Math.round(this.intervalMs / 60_000)} min`,
      );
    }
    return { outcome: "failed", error };
  }
}

const schedulers = new WeakMap<object, Retention>();

/**
 * Starts the retention of the instance `realtime` (storage on, `retention` not `false`), and records it for
 * {@link retentionOf}; `null` when there is none.
 */
export function startRetention(
  realtime: object,
  options: Omit<RetentionOptions, "retention" | "lockName"> & {
    storage: boolean;
    retention: string | false;
    schema: string;
    table: string;
  },
): Retention | null {
  const { storage, retention, schema, table, ...rest } = options;
  if (!storage || retention === false) return null;
  const scheduler = new Retention({ ...rest, retention, lockName: retentionLockName(schema, table) });
  schedulers.set(realtime, scheduler);
  scheduler.start();
  return scheduler;
}

/** Internal, for tests: the retention scheduler of an instance, `undefined` when retention is off. */
export function retentionOf(realtime: object): Retention | undefined {
  return schedulers.get(realtime);
}
