// The stored history as operators and their tools see it: events read back with their private data and
// status, one page at a time by index; replays; the activity log; the processes listening; pruning.

import type { ActivityRow } from "./activity.js";
import { RealtimeError } from "./errors.js";
import { isEventId, normalizeUserId, refuseUnknownKeys, validateType } from "./event.js";
import type { Names } from "./names.js";
import { historyStatements } from "./statements.js";
import { eventOf, type Store } from "./store.js";
import type {
  ActivityEntry,
  EventFilters,
  EventPage,
  EventStatus,
  JsonObject,
  ListenerState,
  ProcessInfo,
  PruneResult,
  RealtimeEvent,
  Scope,
  StoredEvent,
} from "./types.js";

const FILTER_KEYS = ["type", "scope", "userId", "status", "after", "before", "from", "to", "limit"] as const;
const SCOPES: ReadonlySet<string> = new Set(["user", "global", "system"]);
const STATUSES: ReadonlySet<string> = new Set(["new", "dispatched", "sent"]);
const DEFAULT_LIMIT = 50;
const MAX_LIMIT = 1000;
/** Rows one prune statement deletes: small enough that no lock is held for long. */
export const PRUNE_BATCH = 1000;

interface StoredRowData extends Record<string, unknown> {
  id: string;
  type: string;
  scope: Scope;
  user_id: string | null;
  detail: JsonObject;
  private_data: JsonObject | null;
  created_at: Date;
  replay_of: string | null;
  status: EventStatus;
}

/** What this process records about itself on each heartbeat. */
export interface ProcessRecord {
  id: string;
  host: string;
  pid: number;
  startedAt: Date;
  /** How long the record counts as alive without a new heartbeat (ms). */
  ttlMs: number;
  connections: number;
  anonymous: number;
  users: number;
  listener: ListenerState;
}

/** Reads and writes the stored history of one installation. */
export class History {
  private readonly sql: ReturnType<typeof historyStatements>;

  constructor(
    private readonly store: Store,
    private readonly names: Names,
  ) {
    this.sql = historyStatements(names);
  }

  /** One stored event, or `null`. @throws TypeError for a malformed id. */
  async get(id: string): Promise<StoredEvent | null> {
    const rows = await this.store.run<StoredRowData>(this.sql.get, [eventId(id, "events.get")]);
    return rows[0] ? toStoredEvent(rows[0]) : null;
  }

  /** One page, newest first. @throws TypeError / RangeError for a bad filter. */
  async list(filters: EventFilters = {}): Promise<EventPage> {
    const { where, values, limit } = listQuery(filters, this.sql.statusIs);
    const rows = await this.store.run<StoredRowData>(this.sql.list(where, limit + 1), values);
    const events = rows.slice(0, limit).map(toStoredEvent);
    return { events, next: rows.length > limit ? (events.at(-1)?.id ?? null) : null };
  }

  /** The delivery log of one event, oldest first. */
  async activity(id: string): Promise<ActivityEntry[]> {
    const rows = await this.store.run<Record<string, unknown>>(this.sql.activity, [
      eventId(id, "events.activity"),
    ]);
    return rows.map((row) => ({
      kind: row.kind as ActivityEntry["kind"],
      at: row.created_at as Date,
      process: row.process as string | null,
      userId: row.user_id as string | null,
      connections: row.connections as number,
      resumed: row.resumed as boolean,
      replayId: row.replay_id as string | null,
    }));
  }

  /** Writes a batch of activity in one statement. */
  async insertActivity(rows: readonly ActivityRow[], processId: string): Promise<void> {
    await this.store.run(this.sql.insertActivity, [
      rows.map((row) => row.eventId),
      rows.map((row) => row.kind),
      rows.map(() => processId),
      rows.map((row) => row.userId),
      rows.map((row) => row.connections),
      rows.map((row) => row.resumed),
    ]);
  }

  /**
   * Stores each of `ids` again as a new event with `replayOf`, in order, all or none.
   *
   * @throws RealtimeError `NOT_FOUND` naming the ids that are not stored (nothing is written).
   */
  async replay(ids: readonly string[]): Promise<RealtimeEvent[]> {
    const rows = await this.store.run<StoredRowData & { missing: string[] | null }>(this.sql.replay, [
      ids,
      this.store.channel,
    ]);
    const missing = rows[0]?.missing;
    if (missing) {
      throw new RealtimeError(
        "NOT_FOUND",
        `replay: no stored event with id ${missing.join(", ")}; nothing was replayed`,
      );
    }
    // One new row per id, in the order of `ids` (an id given twice is replayed twice).
    return rows.map(eventOf);
  }

  /** Records this process as listening, until `ttlMs` from now. */
  async heartbeat(record: ProcessRecord): Promise<void> {
    await this.store.run(this.sql.heartbeat, [
      record.id,
      record.host,
      record.pid,
      record.startedAt,
      record.ttlMs,
      record.connections,
      record.anonymous,
      record.users,
      record.listener,
    ]);
  }

  /** Removes this process's record (and any long dead). */
  async forgetProcess(id: string): Promise<void> {
    await this.store.run(this.sql.forgetProcesses, [id]);
  }

  /** The processes whose record has not expired. */
  async processes(): Promise<ProcessInfo[]> {
    const rows = await this.store.run<Record<string, unknown>>(this.sql.processes, []);
    return rows.map((row) => ({
      id: row.id as string,
      host: row.host as string,
      pid: row.pid as number,
      startedAt: row.started_at as Date,
      seenAt: row.seen_at as Date,
      connections: row.connections as number,
      anonymous: row.anonymous as number,
      users: row.users as number,
      listener: row.listener as ListenerState,
    }));
  }

  /** Table size and estimate, oldest and newest event, the NOTIFY queue's usage. */
  async tableStatus() {
    const row = (
      await this.store.run<Record<string, unknown>>(this.sql.status, [this.names.qualified("events")])
    )[0];
    const summary = (value: unknown) => {
      const json = value as { id: string; createdAt: string } | null;
      return json && { id: json.id, createdAt: new Date(json.createdAt) };
    };
    return {
      estimatedCount: Number(row?.estimated ?? 0),
      bytes: Number(row?.bytes ?? 0),
      oldest: summary(row?.oldest),
      newest: summary(row?.newest),
      notificationQueueUsage: Number(row?.queue_usage ?? 0),
    };
  }

  /**
   * Deletes events created more than `olderThanMs` ago (only of `type`, if given) and their activity, in
   * batches of {@link PRUNE_BATCH}, each its own statement; with `dryRun`, counts them.
   */
  async prune(
    olderThanMs: number,
    type: string | null,
    dryRun: boolean,
    signal?: AbortSignal,
  ): Promise<PruneResult> {
    if (dryRun) {
      const row = (
        await this.store.run<{ events: number; activity: number }>(this.sql.pruneCount, [olderThanMs, type])
      )[0];
      return { events: row?.events ?? 0, activity: row?.activity ?? 0 };
    }
    const total = { events: 0, activity: 0 };
    for (;;) {
      const row = (
        await this.store.run<{ events: number; activity: number }>(this.sql.prune, [
          olderThanMs,
          type,
          PRUNE_BATCH,
        ])
      )[0];
      total.events += row?.events ?? 0;
      total.activity += row?.activity ?? 0;
      // An aborted signal (the retention stopping at close()) ends the prune after this batch.
      if ((row?.events ?? 0) < PRUNE_BATCH || signal?.aborted) return total;
    }
  }
}

function eventId(id: unknown, what: string): string {
  if (!isEventId(id))
    throw new TypeError(`${what} takes a decimal event id like "1234", got ${JSON.stringify(id)}`);
  return id;
}

function toStoredEvent(row: StoredRowData): StoredEvent {
  const { replayOf: _, ...event } = eventOf(row);
  return { ...event, privateData: row.private_data, replayOf: row.replay_of, status: row.status };
}

/**
 * The WHERE clause (on `e`) and values of a list call.
 *
 * @throws TypeError for an unknown filter or a malformed value; RangeError for a limit out of range.
 */
function listQuery(
  filters: EventFilters,
  statusIs: (param: string) => string,
): { where: string; values: unknown[]; limit: number } {
  if (typeof filters !== "object" || filters === null) {
    throw new TypeError('events.list takes an object of filters, e.g. { type: "task_complete", limit: 50 }');
  }
  refuseUnknownKeys(filters, FILTER_KEYS, "events.list", "filter");
  const clauses: string[] = [];
  const values: unknown[] = [];
  const add = (clause: (n: string) => string, value: unknown) => {
    values.push(value);
    clauses.push(clause(`$${values.length}`));
  };
  if (filters.type !== undefined) add((n) => `e.type = ${n}`, validateFilterType(filters.type));
  if (filters.scope !== undefined) add((n) => `e.scope = ${n}`, oneOf(filters.scope, SCOPES, "scope"));
  if (filters.userId !== undefined)
    add((n) => `e.user_id = ${n}`, normalizeUserId(filters.userId, "userId filter"));
  if (filters.after !== undefined)
    add((n) => `e.id > ${n}::bigint`, eventId(filters.after, "events.list after"));
  if (filters.before !== undefined)
    add((n) => `e.id < ${n}::bigint`, eventId(filters.before, "events.list before"));
  if (filters.from !== undefined) add((n) => `e.created_at >= ${n}`, date(filters.from, "from"));
  if (filters.to !== undefined) add((n) => `e.created_at < ${n}`, date(filters.to, "to"));
  if (filters.status !== undefined) add(statusIs, oneOf(filters.status, STATUSES, "status"));
  const limit = filters.limit ?? DEFAULT_LIMIT;
  if (!Number.isInteger(limit))
    throw new TypeError(`events.list limit must be an integer, got ${String(limit)}`);
  if (limit < 1 || limit > MAX_LIMIT) {
    throw new RangeError(`events.list limit must be between 1 and ${MAX_LIMIT}, got ${limit}`);
  }
  return { where: clauses.length ? clauses.join(" AND ") : "true", values, limit };
}

/** A type filter may name any valid type, reserved ones too (rows written by hand). */
function validateFilterType(type: unknown): string {
  if (typeof type === "string" && /^[A-Za-z0-9_.-]{1,100}$/.test(type)) return type;
  return validateType(type);
}

function oneOf(value: unknown, allowed: ReadonlySet<string>, name: string): string {
  if (typeof value !== "string" || !allowed.has(value)) {
    throw new TypeError(
      `events.list ${name} must be one of ${[...allowed].join(", ")}, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

function date(value: unknown, name: string): Date {
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) {
    throw new TypeError(`events.list ${name} must be a valid Date, got ${String(value)}`);
  }
  return value;
}
