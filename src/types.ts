import type { Pool } from "pg";

/**
 * A user's identity: a non-empty string of at most 200 characters, or a safe integer.
 * Stored and compared as its decimal string: `42` and `"42"` are one user, `"042"` another.
 */
export type UserId = string | number;

/** Who may receive an event: one user's connections, every connection, or only server-side subscribers. */
export type Scope = "user" | "global" | "system";

/** A JSON value as stored in a `jsonb` column. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** A JSON plain object: the shape of every event's `detail`. */
export type JsonObject = { [key: string]: JsonValue };

/**
 * The map from event type to detail type that makes `publish` and `subscribe` typed.
 *
 * @example
 * type Events = { task_complete: { taskId: number }; chat_message: { text: string; author: string } };
 * const realtime = createRealtime<Events>({ connectionString });
 */
export type EventMap = Record<string, object>;

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
}

/** The events of an instance created without an {@link EventMap}: any type, any JSON object detail. */
export type DefaultEvents = Record<string, JsonObject>;

/** The union of typed events of an {@link EventMap}. */
export type EventOf<Events extends EventMap> = {
  [K in keyof Events & string]: RealtimeEvent<K, Events[K]>;
}[keyof Events & string];

/** What every publish call takes besides the scope-specific fields. */
export interface PublishCommon<Events extends EventMap, K extends keyof Events & string> {
  /** 1–100 characters of `[A-Za-z0-9_.-]`; not `connected`, `disconnected`, `reset` or `error`. */
  type: K;
  /** A JSON plain object, default `{}`. Its optional key `":id"` names an entity (`rt:<type>:<id>`). */
  detail?: Events[K];
  /** Stored in the row only: never notified, sent to a browser, or given to handlers. */
  privateData?: object;
}

/** Input of `publish`: an event for one user's connections. */
export interface PublishInput<Events extends EventMap, K extends keyof Events & string>
  extends PublishCommon<Events, K> {
  userId: UserId;
}

/** Input of `publishSystem`: an event for server-side subscribers only; `userId` is for reference. */
export interface PublishSystemInput<Events extends EventMap, K extends keyof Events & string>
  extends PublishCommon<Events, K> {
  userId?: UserId | null;
}

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
   * 49 letters, digits or `_`. The NOTIFY channel is `<schema>_events`.
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
  /** Default: warnings and errors to the console, debug and info dropped. */
  logger?: Logger;
}

/** The state of the process's LISTEN connection. */
export type ListenerState = "idle" | "connecting" | "listening" | "reconnecting" | "failed" | "closed";
