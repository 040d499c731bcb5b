// What operators and their tools call: stored events read back, replays, pruning, counters and the
// installation's status. The delivery path only feeds it (counters, the activity tally).
import type pg from "pg";
import { ActivityLog } from "./activity.js";
import type { StoredEvents } from "./api.js";
import { parseDuration } from "./duration.js";
import { RealtimeError } from "./errors.js";
import { isEventId, refuseUnknownKeys, validateType } from "./event.js";
import { History } from "./history.js";
import { appliedVersions, LATEST_MIGRATION } from "./migrate.js";
import type { Names } from "./names.js";
import { ProcessRecorder, type ProcessSample } from "./processes.js";
import { type Retention, startRetention } from "./retention.js";
import { Counters } from "./stats.js";
import type { Store } from "./store.js";
import type {
  EventFilters,
  ListenerState,
  Logger,
  PruneOptions,
  PruneResult,
  RealtimeEvent,
  RealtimeStats,
  RealtimeStatus,
} from "./types.js";

export interface OperationsOptions {
  pool: pg.Pool;
  store: Store;
  names: Names;
  storage: boolean;
  activity: boolean;
  heartbeatMs: number;
  /** The `retention` option: `false`, or how old an event may get before it is deleted. */
  retention: string | false;
  /** The realtime instance, which the retention scheduler is recorded for (`retentionOf`). */
  owner: object;
  logger: Logger;
  /** Throws `CLOSED` once the instance is closed. */
  assertOpen(): void;
  /** The open streams now, for the process record and `stats()`. */
  connections(): { total: number; anonymous: number; users: number };
  listenerState(): ListenerState;
}

export class Operations {
  readonly counters = new Counters();
  readonly history: History;
  /** `null` without storage or with `activity: false`. */
  readonly activity: ActivityLog | null;
  /** `null` without storage: the processes table is part of the stored installation. */
  readonly processes: ProcessRecorder | null;
  readonly events: StoredEvents;
  private readonly retention: Retention | null;

  constructor(private readonly options: OperationsOptions) {
    this.history = new History(options.store, options.names);
    this.processes = options.storage
      ? new ProcessRecorder(this.history, options.heartbeatMs, () => this.sample(), options.logger)
      : null;
    this.activity =
      options.storage && options.activity && this.processes
        ? new ActivityLog(this.history, this.processes.id, options.logger)
        : null;
    const stored =
      <A extends unknown[], R>(method: string, read: (...args: A) => Promise<R>) =>
      async (...args: A): Promise<R> => {
        this.assertStored(method);
        return read(...args);
      };
    // One process at a time prunes, every tenth of the retention (src/retention.ts).
    this.retention = startRetention(options.owner, {
      storage: options.storage,
      retention: options.retention,
      schema: options.names.schema,
      table: options.names.table,
      logger: options.logger,
      pool: options.pool,
      prune: (olderThanMs, signal) => this.history.prune(olderThanMs, null, false, signal),
    });
    this.events = {
      get: stored("events.get", (id: string) => this.history.get(id)),
      list: stored("events.list", (filters?: EventFilters) => this.history.list(filters)),
      activity: stored("events.activity", (id: string) => this.history.activity(id)),
    };
  }

  async replay(ids: string | readonly string[]): Promise<RealtimeEvent | RealtimeEvent[]> {
    this.assertStored("replay");
    const list = typeof ids === "string" ? [ids] : ids;
    if (!Array.isArray(list) || list.length === 0 || list.some((id) => !isEventId(id))) {
      throw new TypeError(
        `replay takes a decimal event id or a non-empty array of them, got ${JSON.stringify(ids)}`,
      );
    }
    const events = await this.history.replay(list);
    return typeof ids === "string" ? (events[0] as RealtimeEvent) : events;
  }

  async prune(pruneOptions: PruneOptions): Promise<PruneResult> {
    this.assertStored("prune");
    if (typeof pruneOptions !== "object" || pruneOptions === null) {
      throw new TypeError('prune takes options like { olderThan: "30d" }');
    }
    refuseUnknownKeys(pruneOptions, ["olderThan", "type", "dryRun"], "prune", "option");
    const olderThanMs = parseDuration(pruneOptions.olderThan, "prune olderThan");
    const type = pruneOptions.type === undefined ? null : validateType(pruneOptions.type);
    const { dryRun = false } = pruneOptions;
    if (typeof dryRun !== "boolean") throw new TypeError("prune dryRun must be true or false");
    return this.history.prune(olderThanMs, type, dryRun);
  }

  stats(): RealtimeStats {
    const { counters, activity } = this;
    return {
      connections: { ...this.options.connections(), topics: 0 },
      events: { received: counters.received, sent: counters.sent, dropped: counters.dropped },
      listener: {
        state: this.options.listenerState(),
        reconnects: counters.reconnects,
        lastReconnectAt: counters.lastReconnectAt,
      },
      replays: { running: counters.replaysRunning, total: counters.replaysTotal, resets: counters.resets },
      activity: {
        written: activity?.written ?? 0,
        dropped: activity?.dropped ?? 0,
        failed: activity?.failed ?? 0,
      },
    };
  }

  async status(): Promise<RealtimeStatus> {
    this.assertStored("status");
    const { names, pool } = this.options;
    const [applied, table, processes] = await Promise.all([
      appliedVersions(pool, names),
      this.history.tableStatus(),
      this.history.processes(),
    ]);
    const { notificationQueueUsage, ...events } = table;
    return {
      schema: names.schema,
      table: names.table,
      migration: { applied: applied?.at(-1) ?? 0, latest: LATEST_MIGRATION },
      events,
      processes,
      notificationQueueUsage,
    };
  }

  /** Stops retention after its batch in progress, writes the pending activity, removes this process's record. */
  async close(): Promise<void> {
    await this.retention?.stop();
    await this.activity?.close();
    await this.processes?.stop();
  }

  private sample(): ProcessSample {
    const { total, anonymous, users } = this.options.connections();
    return { connections: total, anonymous, users, listener: this.options.listenerState() };
  }

  private assertStored(method: string): void {
    this.options.assertOpen();
    if (!this.options.storage) {
      throw new RealtimeError(
        "STORAGE_OFF",
        `${method} reads the events table, and this instance has storage: false`,
      );
    }
  }
}
