import type { Pool } from "pg";
import type { DefaultEvents, EventMap, JsonObject } from "./event-map.js";

export type { DefaultEvents, EventMap, JsonObject, JsonValue } from "./event-map.js";

/**
 * A user's identity: a non-empty string of at most 200 characters, or a safe integer.
 * Stored and compared as its decimal string: `42` and `"42"` are one user, `"042"` another.
 */
export type UserId = string | number;

/** Who may receive an event: one user's connections, every connection, or only server-side subscribers. */
export type Scope = "user" | "global" | "system";

/**
 * An event as delivered to `subscribe` handlers and hooks, and as `publish` resolves it.
 * `privateData` is never part of it.
 */
export interface RealtimeEvent<Type extends string = string, Detail extends object = JsonObject> {
  /** The row's bigint id as a decimal string; without storage, a random unique string. */
  id: string;
  type: Type;
  scope: Scope;
  /** The user the event is for (`user` scope) or refers to (`system` scope), as a decimal string. */
  userId: string | null;
  detail: Detail;
  createdAt: Date;
  /** Set only on an event sent by `realtime.replay()`: the id of the stored event it replays. */
  replayOf?: string;
}

/** The union of typed events of an {@link EventMap}. */
export type EventOf<Events extends EventMap> = {
  [K in keyof Events & string]: RealtimeEvent<K, Events[K]>;
}[keyof Events & string];

/**
 * What every publish call takes besides the scope-specific fields. `detail` may be left out only when
 * the event map's detail for `K` has no required key (`{}` is then published).
 */
export type PublishCommon<Events extends EventMap, K extends keyof Events & string> = {
  /** 1–100 characters of `[A-Za-z0-9_.-]`; not `connected`, `disconnected`, `reset` or `error`. */
  type: K;
  /** Stored in the row only: never notified, sent to a browser, or given to handlers. */
  privateData?: object;
} & DetailOf<Events[K]>;

/**
 * The `detail` field of a publish input: a JSON plain object (default `{}`) whose optional key `":id"`
 * names an entity (`rt:<type>:<id>`); required when `Detail` has a required key, so that a typed event
 * cannot be published without the fields its listeners read.
 */
export type DetailOf<Detail> = Record<never, never> extends Detail ? { detail?: Detail } : { detail: Detail };

/** Input of `publish`: an event for one user's connections. */
export type PublishInput<Events extends EventMap, K extends keyof Events & string> = PublishCommon<
  Events,
  K
> & {
  userId: UserId;
};

/** Input of `publishSystem`: an event for server-side subscribers only; `userId` is for reference. */
export type PublishSystemInput<Events extends EventMap, K extends keyof Events & string> = PublishCommon<
  Events,
  K
> & {
  userId?: UserId | null;
};

/** The second argument of every publish call. */
export interface PublishOptions {
  /**
   * A client inside the caller's open transaction (anything with the `pg` `query(text, values)` shape,
   * e.g. a `PoolClient` after `BEGIN`): the row and its notification commit or roll back with it.
   */
  client?: { query(text: string, values?: unknown[]): Promise<unknown> };
}

/** A pino-compatible logger; each method takes a message or an object then a message. */
export interface Logger {
  debug(...args: unknown[]): void;
  info(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
}

/** What `beforeSend` learns about the connection it runs for. */
export interface SendContext {
  /** The connection's user id as a decimal string, or `null` when anonymous. */
  userId: string | null;
}

/** Options of {@link createRealtime}. Every field is optional except a way to reach PostgreSQL. */
export interface RealtimeOptions<Events extends EventMap = DefaultEvents> {
  /** PostgreSQL connection string; used for the pool the instance creates and for LISTEN. */
  connectionString?: string;
  /** The app's own `pg.Pool`, used for publishing instead of creating one; never ended by `close()`. */
  pool?: Pool;
  /**
   * A direct session connection for LISTEN, for setups where `connectionString` goes through a
   * transaction-pooling PgBouncer. Default: `connectionString`, else the pool's connection settings.
   */
  listenConnectionString?: string;
  /**
   * Who the stream's request belongs to: the user id, or `null` for an anonymous connection that
   * receives global events only. Throwing refuses the stream with `500`. Default: every request anonymous.
   */
  authenticate?: (request: Request) => UserId | null | Promise<UserId | null>;
  /** `false` answers `401` when `authenticate` returns `null`. Default `true`. */
  allowAnonymous?: boolean;
  /** `true` (default): every event is a row in `<schema>.events`; `false`: NOTIFY only, no replay. */
  storage?: boolean;
  /**
   * The PostgreSQL schema of the events table, default `"pgrealtime"`: a letter or `_`, then up to
   * 49 letters, digits or `_`. The NOTIFY channel is `<schema>_events` (`<schema>.<table>` with another `table`).
   */
  schema?: string;
  /** URL prefix of the endpoints, default `"/realtime"`: `{basePath}/events`, `{basePath}/client.js`. */
  basePath?: string;
  /** Milliseconds of silence after which an open stream gets a `: ping` comment line. Default 15000. */
  heartbeatMs?: number;
  /** Milliseconds the browser waits before its native reconnect, sent as `retry:`. Default 3000. */
  retryMs?: number;
  /**
   * Bytes a connection may have queued unsent before it is disconnected as a slow reader (it then
   * resumes from its last id). Default 1048576 (1 MiB).
   */
  maxBufferedBytes?: number;
  /**
   * Bytes of JSON a `detail` may take, default 1048576 (1 MiB); more is a `RangeError` before anything
   * is written. Details of 8000 bytes or more travel as an id and are read back from the table.
   */
  maxPayloadBytes?: number;
  /**
   * Events a resuming stream may replay, default 10000; over it the stream gets `event: reset` instead
   * and the client reloads its state.
   */
  maxReplay?: number;
  /** Open streams this process serves, default 10000; the next one gets `503` with `Retry-After`. */
  maxConnections?: number;
  /** Open streams one user may have in this process, default 20; the next one gets `429` with `Retry-After`. */
  maxConnectionsPerUser?: number;
  /**
   * Runs once per event per process before routing (live, catch-up and replay alike); return the event
   * with a changed `type` or `detail`, or `null` to drop it. It may not change `id`, `scope` or
   * `userId` (routing follows the stored row): such a result is logged and the event dropped.
   */
  onReceive?: (
    event: EventOf<Events>,
  ) => EventOf<Events> | RealtimeEvent | null | Promise<EventOf<Events> | RealtimeEvent | null>;
  /**
   * Runs per connection on that connection's own copy; return the event to send (only `type` and
   * `detail` may differ: an event cannot be widened to another audience), or `null` to skip it there.
   */
  beforeSend?: (event: EventOf<Events>, context: SendContext) => EventOf<Events> | RealtimeEvent | null;
  /**
   * Milliseconds an `onReceive` may take for one event; one that has not settled by then drops that
   * event (logged) and the next ones go on. Default 5000.
   */
  hookTimeoutMs?: number;
  /**
   * With `storage: false`, a secret of at least 32 bytes, the same in every process, that signs every
   * notification (HMAC-SHA256): then no role that can merely connect to the database can inject an event.
   * Without it, `storage: false` trusts every role that can connect. Not used with storage on, where
   * what is delivered is read from the table.
   */
  secret?: string;
  /**
   * The name of the events table in `schema`, default `"events"`: a letter or `_`, then up to 29
   * letters, digits or `_`. With another name, the library's other tables in the schema are prefixed
   * with it (`<table>_activity`, …) and the NOTIFY channel is `<schema>.<table>`, so several tables
   * can share a schema.
   */
  table?: string;
  /**
   * Records delivery activity (who each event reached), written in batches off the delivery path:
   * `realtime.events.activity(id)`, the admin page, the event's `status`. Default `true`.
   */
  activity?: boolean;
  /**
   * Deletes events (and their activity) older than this, in batches, from one process at a time:
   * `"30d"`, `"12h"`, `"90m"`, or `false` to keep every event (the default).
   */
  retention?: string | false;
  /** Default: warnings and errors to the console, debug and info dropped. */
  logger?: Logger;
}

/** The state of the process's LISTEN connection. */
export type ListenerState = "idle" | "connecting" | "listening" | "reconnecting" | "failed" | "closed";

/** How far a stored event got: `new` (stored), `dispatched` (a process received it), `sent` (a browser got it). */
export type EventStatus = "new" | "dispatched" | "sent";

/** A stored event as `realtime.events` reads it back: the event, its private data and how far it got. */
export interface StoredEvent extends Omit<RealtimeEvent, "replayOf"> {
  /** The `privateData` it was published with, or `null`. */
  privateData: JsonObject | null;
  /** The id of the event it replays, or `null` for an original. */
  replayOf: string | null;
  status: EventStatus;
}

/**
 * Filters of `realtime.events.list`, all optional and combined with AND. Newest first.
 * `after` / `before` bound the id (exclusive; pass the previous page's `next` as `before`),
 * `from` / `to` the creation time (`from` inclusive, `to` exclusive).
 */
export interface EventFilters {
  type?: string;
  scope?: Scope;
  userId?: UserId;
  status?: EventStatus;
  after?: string;
  before?: string;
  from?: Date;
  to?: Date;
  /** Events per page, 1–1000, default 50. */
  limit?: number;
}

/** One page of `realtime.events.list`: `next` goes into `before` for the next page, `null` at the end. */
export interface EventPage {
  events: StoredEvent[];
  next: string | null;
}

/**
 * One entry of an event's delivery log (`realtime.events.activity(id)`):
 * - `dispatched`: a process received the event (`connections`: how many of its streams it was written to);
 * - `sent`: it was written to `connections` streams of `userId` (`null`: anonymous streams) in
 *   `process`, live or, with `resumed: true`, replayed to a resuming client;
 * - `replayed`: `realtime.replay()` sent it again as event `replayId`.
 */
export interface ActivityEntry {
  kind: "dispatched" | "sent" | "replayed";
  at: Date;
  /** The process that recorded it (`host:pid:tag`), `null` for `replayed`. */
  process: string | null;
  userId: string | null;
  connections: number;
  resumed: boolean;
  replayId: string | null;
}

/** `realtime.stats()`: this process's counters since it started. */
export interface RealtimeStats {
  connections: { total: number; anonymous: number; users: number; topics: number };
  events: { received: number; sent: number; dropped: number };
  listener: { state: ListenerState; reconnects: number; lastReconnectAt: Date | null };
  replays: { running: number; total: number; resets: number };
  /** Activity entries written, dropped (buffer full) and batches that failed to write. */
  activity: { written: number; dropped: number; failed: number };
}

/** A process listening on the channel, as it recorded itself on its last heartbeat. */
export interface ProcessInfo {
  id: string;
  host: string;
  pid: number;
  startedAt: Date;
  seenAt: Date;
  connections: number;
  anonymous: number;
  users: number;
  listener: ListenerState;
}

/** `realtime.status()`: the state of the whole installation, read from the database. */
export interface RealtimeStatus {
  schema: string;
  table: string;
  /** Applied migration, and the newest this version knows. */
  migration: { applied: number; latest: number };
  /** `estimatedCount` is the planner's estimate (never a `count(*)`); `bytes` the table with its indexes. */
  events: {
    estimatedCount: number;
    bytes: number;
    oldest: StoredEventSummary | null;
    newest: StoredEventSummary | null;
  };
  /** The processes whose last heartbeat is less than two heartbeats old. */
  processes: ProcessInfo[];
  /** `pg_notification_queue_usage()`: the fraction (0–1) of the NOTIFY queue in use. */
  notificationQueueUsage: number;
}

/** An event's id and creation time. */
export interface StoredEventSummary {
  id: string;
  createdAt: Date;
}

/** Options of `realtime.prune`. */
export interface PruneOptions {
  /** Delete events created longer ago than this: `"30d"`, `"12h"`, `"90m"`. */
  olderThan: string;
  /** Only events of this type. */
  type?: string;
  /** Count what would be deleted, delete nothing. */
  dryRun?: boolean;
}

/** What `realtime.prune` deleted (or, with `dryRun`, would delete). */
export interface PruneResult {
  events: number;
  activity: number;
}
