import pg from "pg";
import { RealtimeError } from "./errors.js";
import { attachStreamHost, createFetchHandler, type StreamHost } from "./http.js";
import { Listener } from "./listener.js";
import { type MigrateResult, migrate } from "./migrate.js";
import { resolveOptions } from "./options.js";
import { ephemeralPayload, isEventId, type PreparedEvent, prepareEvent } from "./publish.js";
import { Receiver } from "./receiver.js";
import { replay } from "./replay.js";
import { type BeforeSend, isThenable, Router } from "./router.js";
import { Connection, HeartbeatSweep, namedFrame, retryFrame } from "./sse.js";
import { type Queryable, Store } from "./store.js";
import type {
  DefaultEvents,
  EventMap,
  EventOf,
  ListenerState,
  PublishCommon,
  PublishInput,
  PublishOptions,
  PublishSystemInput,
  RealtimeEvent,
  RealtimeOptions,
} from "./types.js";

/** How long a new stream waits for the LISTEN connection before it is refused with 503. */
const LISTEN_WAIT_MS = 5_000;

/** Options of `subscribe`. */
export interface SubscribeOptions {
  /**
   * Called when events may have been lost for good: without storage, after the LISTEN connection was
   * down (`"listener-reconnected"`). With storage, missed events are caught up instead.
   */
  onReset?(reason: string): void;
}

/** The object {@link createRealtime} returns. `Events` maps each event type to its detail type. */
export interface Realtime<Events extends EventMap = DefaultEvents> {
  /**
   * Stores an event for one user and notifies every process; resolves to the stored event.
   *
   * With `{ client }` the row and its notification are part of the caller's open transaction: they
   * commit or roll back with it, and nothing is delivered before the commit.
   *
   * @throws TypeError when `userId`, `type`, `detail` or `privateData` is invalid (nothing is written).
   * @throws RangeError when `detail` is over `maxPayloadBytes`, or with `storage: false` when the event
   *   does not fit NOTIFY's 8000 bytes (UTF-8); nothing is written.
   * @throws RealtimeError `MIGRATION_REQUIRED` when the table is missing, `CLOSED` after `close()`.
   * @example await realtime.publish({ userId: 42, type: "task_complete", detail: { taskId: 123 } });
   */
  publish<K extends keyof Events & string>(
    input: PublishInput<Events, K>,
    options?: PublishOptions,
  ): Promise<RealtimeEvent<K, Events[K]>>;
  /** Like {@link Realtime.publish}, for every connection, signed in or not. */
  publishGlobal<K extends keyof Events & string>(
    input: PublishCommon<Events, K>,
    options?: PublishOptions,
  ): Promise<RealtimeEvent<K, Events[K]>>;
  /** Like {@link Realtime.publish}, for `subscribe` handlers only: never sent to a browser. */
  publishSystem<K extends keyof Events & string>(
    input: PublishSystemInput<Events, K>,
    options?: PublishOptions,
  ): Promise<RealtimeEvent<K, Events[K]>>;
  /**
   * Calls `handler` with every event of every scope that reaches this process (from any process),
   * after `onReceive`. Starts the LISTEN connection if needed; await {@link Realtime.ready} before
   * relying on it. A throwing handler is logged and does not stop the others.
   *
   * @returns a function that unsubscribes.
   */
  subscribe(handler: (event: EventOf<Events>) => void, options?: SubscribeOptions): () => void;
  /** Resolves once this process's LISTEN connection receives notifications (starting it if needed). */
  ready(): Promise<void>;
  /** The state of the LISTEN connection. */
  readonly listenerState: ListenerState;
  /**
   * Observes the LISTEN connection: `"error"` when it fails or drops (it then reconnects by itself,
   * forever, with capped backoff), `"reconnect"` when it listens again after such a loss.
   *
   * @returns a function that removes the listener.
   * @example realtime.on("reconnect", () => metrics.increment("realtime.reconnect"));
   */
  on(name: "reconnect", listener: () => void): () => void;
  on(name: "error", listener: (error: unknown) => void): () => void;
  /**
   * The greatest stored event id ("0" when there is none): render it into the page
   * (`scriptTag({ lastEventId })`) before reading the page's data, so that events published between
   * the render and the browser's connect are delivered. Events committed meanwhile may arrive twice
   * (once in the page, once as an event): handle them idempotently by `event.id`.
   */
  currentEventId(): Promise<string>;
  /** How many event streams are open in this process. */
  readonly connectionCount: number;
  /**
   * The Fetch API handler: `GET {basePath}/events` (the stream) and `GET {basePath}/client.js`;
   * `404` for any other path.
   */
  handler(request: Request): Promise<Response>;
  /**
   * The tag that loads and connects the browser client, for the page's `<head>`.
   *
   * @param options.lastEventId the cursor the page was rendered at, so events published between the
   *   render and the connect are not lost (a decimal id).
   * @param options.autoConnect `false` to load the client without connecting (`window.pgrealtime.connect`).
   * @example realtime.scriptTag() // '<script src="/realtime/client.js" defer></script>'
   */
  scriptTag(options?: { lastEventId?: string | null; autoConnect?: boolean } | null): string;
  /**
   * Creates or upgrades the tables (idempotent; safe from several processes at once).
   * With `dryRun`, returns the SQL without running it.
   */
  migrate(options?: { dryRun?: boolean }): Promise<MigrateResult>;
  /**
   * Ends open streams, the LISTEN connection, timers and the pool it created (not one passed in).
   * Idempotent. Afterwards publishing rejects with `RealtimeError` `CLOSED`.
   */
  close(): Promise<void>;
}

/**
 * Creates the realtime instance of a process.
 *
 * @throws TypeError / RangeError when an option is invalid (see {@link RealtimeOptions}).
 * @example
 * const realtime = createRealtime({ connectionString: process.env.DATABASE_URL });
 * await realtime.migrate();
 * http.createServer(toNodeHandler(realtime, { authenticate: (req) => userIdFromCookie(req) })).listen(3000);
 */
export function createRealtime<Events extends EventMap = DefaultEvents>(
  options: RealtimeOptions<Events>,
): Realtime<Events> {
  // Inside, events are untyped; the type parameter only shapes the public surface.
  const untyped = options as unknown as RealtimeOptions;
  const resolved = resolveOptions(untyped);
  const { logger } = resolved;
  const ownsPool = options.pool === undefined;
  const pool = options.pool ?? new pg.Pool({ connectionString: options.connectionString });
  if (ownsPool) {
    // An idle pooled client losing its server must not crash the process; the pool replaces it.
    pool.on("error", (error) => logger.warn({ err: error }, "pgrealtime: idle pool connection failed"));
  }
  const store = new Store(resolved.schema);
  const router = new Router(logger, untyped.beforeSend as BeforeSend | undefined);
  const heartbeat = new HeartbeatSweep(resolved.heartbeatMs, () => router.connections());
  const onReceive = untyped.onReceive as
    | ((event: RealtimeEvent) => RealtimeEvent | null | Promise<RealtimeEvent | null>)
    | undefined;
  const resetObservers = new Set<(reason: string) => void>();
  /** Calls each observer; one that throws is logged and stops neither the others nor the caller. */
  function notifyAll<T>(fns: Set<(value: T) => void>, value: T, what: string): void {
    const failed = (error: unknown) => logger.error({ err: error }, `pgrealtime: ${what} threw`);
    for (const fn of fns) {
      try {
        const result: unknown = fn(value);
        if (isThenable(result)) result.then(undefined, failed);
      } catch (error) {
        failed(error);
      }
    }
  }

  const receiver = new Receiver({
    store,
    pool,
    storage: resolved.storage,
    logger,
    onReceive,
    route: (event) => router.route(event),
    reset(reason) {
      logger.warn({ reason }, "pgrealtime: events may have been lost; told every client to reset");
      const frame = namedFrame("reset", { reason });
      for (const connection of router.connections()) connection.send(frame);
      notifyAll(resetObservers, reason, "a subscribe onReset");
    },
  });

  const observers = {
    reconnect: new Set<(error?: unknown) => void>(),
    error: new Set<(error?: unknown) => void>(),
  };
  const listener = new Listener({
    connection: listenConnectionConfig(untyped),
    channel: store.channel,
    heartbeatMs: resolved.heartbeatMs,
    logger,
    onPayload: (payload) => receiver.notification(payload),
    onAttempt: (listening) => receiver.attempt(listening),
    onState(state, previous, error) {
      if ((state === "reconnecting" || state === "failed") && error !== undefined) {
        notifyAll(observers.error, error, 'an on("error") listener');
      }
      if (state === "listening" && previous === "reconnecting") {
        notifyAll(observers.reconnect, undefined, 'an on("reconnect") listener');
      }
    },
  });

  let closed: Promise<void> | undefined;
  function assertOpen(): void {
    if (closed) throw new RealtimeError("CLOSED", "pgrealtime: this realtime instance is closed");
  }

  async function write(
    event: PreparedEvent,
    publishOptions: PublishOptions | undefined,
  ): Promise<RealtimeEvent> {
    assertOpen();
    const db = publishTarget(publishOptions) ?? pool;
    for (const [name, json] of [
      ["detail", event.detailJson],
      ["privateData", event.privateDataJson],
    ] as const) {
      const bytes = json === null ? 0 : Buffer.byteLength(json, "utf8");
      if (bytes > resolved.maxPayloadBytes) {
        throw new RangeError(
          `${name} of "${event.type}" is ${bytes} bytes of JSON, over maxPayloadBytes (${resolved.maxPayloadBytes}); store a reference (an id to fetch) instead`,
        );
      }
    }
    const base = {
      type: event.type,
      scope: event.scope,
      userId: event.userId,
      detail: JSON.parse(event.detailJson),
    };
    if (!resolved.storage) {
      const payload = ephemeralPayload(event);
      await guard(store.notify(db, payload));
      const sent = JSON.parse(payload) as { id: string; createdAt: string };
      return { id: sent.id, ...base, createdAt: new Date(sent.createdAt) };
    }
    const { id, createdAt } = await guard(store.insert(db, event));
    return { id, ...base, createdAt };
  }

  async function guard<T>(query: Promise<T>): Promise<T> {
    try {
      return await query;
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === "42P01" || code === "3F000") {
        throw new RealtimeError(
          "MIGRATION_REQUIRED",
          `pgrealtime: the tables in schema "${resolved.schema}" are missing or out of date (${(error as Error).message}); run \`npx pgrealtime migrate\` (or await realtime.migrate())`,
          { cause: error },
        );
      }
      throw error;
    }
  }

  const host: StreamHost = {
    basePath: resolved.basePath,
    retryMs: resolved.retryMs,
    allowAnonymous: resolved.allowAnonymous,
    logger,
    authenticate: options.authenticate,
    async waitForListener() {
      if (closed) return false;
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, LISTEN_WAIT_MS);
      });
      await Promise.race([listener.start().catch(() => {}), timeout]);
      clearTimeout(timer);
      return listener.state === "listening" && !closed;
    },
    capacity(userId) {
      if (router.connectionCount >= resolved.maxConnections) {
        return { status: 503, message: "Too many event streams on this server; retry later\n" };
      }
      if (userId !== null && router.userConnectionCount(userId) >= resolved.maxConnectionsPerUser) {
        return { status: 429, message: "Too many event streams for this user; close a tab or retry later\n" };
      }
      return null;
    },
    open(userId, sink, lastEventId) {
      const connection = new Connection(userId, sink, resolved.maxBufferedBytes, (slow) => {
        logger.warn(
          { userId: slow.userId, maxBufferedBytes: resolved.maxBufferedBytes },
          "pgrealtime: disconnected a client that stopped reading; it resumes from its last id",
        );
        release(true);
      });
      function release(abort = false): void {
        if (!router.delete(connection)) return;
        connection.close(abort);
        heartbeat.update(router.connectionCount > 0);
      }
      connection.send(retryFrame(resolved.retryMs));
      connection.send(namedFrame("connected", { userId }));
      if (lastEventId !== null) connection.hold(lastEventId);
      router.add(connection);
      heartbeat.update(true);
      if (lastEventId !== null) {
        void replay(connection, lastEventId, {
          store,
          pool,
          storage: resolved.storage,
          maxReplay: resolved.maxReplay,
          stallMs: 2 * resolved.heartbeatMs,
          logger,
          onReceive,
          frameFor: (event, target) => router.frameFor(event, target),
          sync: () => receiver.sync(),
        });
      }
      return () => release();
    },
  };

  return attachStreamHost<Realtime<Events>>(
    {
      publish: async (input, publishOptions) =>
        write(prepareEvent(input, "user", input?.userId), publishOptions) as never,
      publishGlobal: async (input, publishOptions) =>
        write(prepareEvent(input, "global", null), publishOptions) as never,
      publishSystem: async (input, publishOptions) =>
        write(prepareEvent(input, "system", input?.userId), publishOptions) as never,
      subscribe(handlerFn, subscribeOptions) {
        assertOpen();
        if (typeof handlerFn !== "function")
          throw new TypeError("subscribe takes a function (event) => void");
        const onReset = subscribeOptions?.onReset;
        if (onReset !== undefined && typeof onReset !== "function") {
          throw new TypeError("subscribe's onReset must be a function (reason) => void");
        }
        listener.start().catch(() => {});
        const unsubscribe = router.subscribe(handlerFn as (event: RealtimeEvent) => void);
        if (onReset) resetObservers.add(onReset);
        return () => {
          unsubscribe();
          if (onReset) resetObservers.delete(onReset);
        };
      },
      async ready() {
        assertOpen();
        await listener.start();
        assertOpen();
      },
      get listenerState() {
        return listener.state;
      },
      on(name: "reconnect" | "error", fn: (error: unknown) => void) {
        if (!Object.hasOwn(observers, name)) {
          throw new TypeError(`on: unknown event "${String(name)}"; use "reconnect" or "error"`);
        }
        const set = observers[name];
        if (typeof fn !== "function") throw new TypeError(`on("${name}") takes a function`);
        set.add(fn);
        return () => {
          set.delete(fn);
        };
      },
      async currentEventId() {
        assertOpen();
        const { max, prunedThrough } = await guard(store.bounds(pool));
        return (max !== null && max > prunedThrough ? max : prunedThrough).toString();
      },
      get connectionCount() {
        return router.connectionCount;
      },
      handler: createFetchHandler(host),
      scriptTag(tagOptions) {
        for (const key of Object.keys(tagOptions ?? {})) {
          if (key !== "lastEventId" && key !== "autoConnect") {
            throw new TypeError(
              `scriptTag: unknown option "${key}"; the options are lastEventId, autoConnect`,
            );
          }
        }
        const autoConnect = tagOptions?.autoConnect;
        if (autoConnect !== undefined && typeof autoConnect !== "boolean") {
          throw new TypeError("scriptTag: autoConnect must be true or false");
        }
        let attributes = `src="${resolved.basePath}/client.js" defer`;
        const lastEventId = tagOptions?.lastEventId;
        if (lastEventId !== undefined && lastEventId !== null) {
          // Validated, so it needs no HTML escaping: digits only, and a bigint.
          if (!isEventId(lastEventId)) {
            throw new TypeError(`lastEventId must be a decimal event id, got ${JSON.stringify(lastEventId)}`);
          }
          attributes += ` data-last-event-id="${lastEventId}"`;
        }
        if (autoConnect === false) attributes += ` data-auto-connect="false"`;
        return `<script ${attributes}></script>`;
      },
      async migrate(migrateOptions) {
        assertOpen();
        return migrate(pool, resolved.schema, migrateOptions);
      },
      close() {
        closed ??= (async () => {
          for (const connection of [...router.connections()]) {
            router.delete(connection);
            // A client that is not reading would keep a gracefully ended response (and the server) open.
            connection.close(connection.bufferedBytes > 0);
          }
          heartbeat.update(false);
          receiver.close();
          await listener.close();
          if (ownsPool) await pool.end();
        })();
        return closed;
      },
    },
    host,
  );
}

/**
 * The connection a publish runs on: the caller's transaction client, if given.
 *
 * @throws TypeError when `client` lacks a `query(text, values)` method.
 */
function publishTarget(options: PublishOptions | undefined): Queryable | undefined {
  if (options === undefined || options.client === undefined) return undefined;
  if (typeof (options.client as { query?: unknown } | null)?.query !== "function") {
    throw new TypeError("publish options.client must have a pg-style query(text, values) method");
  }
  return options.client as Queryable;
}

function listenConnectionConfig(options: RealtimeOptions): pg.ClientConfig {
  const connectionString = options.listenConnectionString ?? options.connectionString;
  if (connectionString) return { connectionString };
  // The app's pool: reuse its connection settings (not its connections) for a dedicated session.
  return { ...(options.pool as pg.Pool & { options: pg.PoolConfig }).options };
}
