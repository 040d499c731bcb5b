// Wiring only: builds the parts of one instance and returns its public face. Each path lives in its
// own module: publish.ts, listener.ts, receiver.ts, router.ts, stream.ts, replay.ts, store.ts.
import pg from "pg";
import { createFetchHandler } from "./adapters/fetch.js";
import type { Realtime, SubscribeOptions } from "./api.js";
import { encodeDisconnect } from "./channel.js";
import { HeartbeatSweep } from "./connection.js";
import { cursorToken, rowTag } from "./cursor.js";
import { attachHost, type Host } from "./dispatch.js";
import { isEventId, normalizeUserId, refuseUnknownKeys } from "./event.js";
import { type BeforeSend, Hooks, type OnReceive } from "./hooks.js";
import { Listener } from "./listener.js";
import { migrate } from "./migrate.js";
import { resolveOptions } from "./options.js";
import { closedError, Publisher } from "./publish.js";
import { Receiver } from "./receiver.js";
import { isThenable, Router } from "./router.js";
import { namedFrame } from "./sse.js";
import { Store } from "./store.js";
import { Streams } from "./stream.js";
import type { DefaultEvents, EventMap, RealtimeEvent, RealtimeOptions } from "./types.js";

export type { Realtime, SubscribeOptions } from "./api.js";

/** How long a new stream waits for the LISTEN connection before it is refused with 503. */
const LISTEN_WAIT_MS = 5_000;

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
  const resolved = resolveOptions(options as unknown as RealtimeOptions);
  const { logger, storage } = resolved;
  const secret = resolved.secret ?? null;
  const ownsPool = resolved.pool === undefined;
  const pool = resolved.pool ?? new pg.Pool({ connectionString: resolved.connectionString });
  // An idle pooled client losing its server must not crash the process; the pool replaces it. One that
  // the server ended for idling (57P05, idle_session_timeout) is expected, not worth a warning.
  if (ownsPool) {
    pool.on("error", (error) => {
      const expected = (error as { code?: string }).code === "57P05";
      logger[expected ? "debug" : "warn"]({ err: error }, "pgrealtime: idle pool connection failed");
    });
  }
  let closed: Promise<void> | undefined;
  const assertOpen = () => {
    if (closed) throw closedError();
  };

  const store = new Store(pool, resolved.schema);
  const hooks = new Hooks(
    resolved.onReceive as OnReceive | undefined,
    resolved.beforeSend as BeforeSend | undefined,
    resolved.hookTimeoutMs,
    logger,
  );
  const router = new Router(logger, hooks);
  const heartbeat = new HeartbeatSweep(resolved.heartbeatMs, () => router.connections());
  const observers = {
    reconnect: new Set<(value?: unknown) => void>(),
    error: new Set<(value?: unknown) => void>(),
  };
  const resetObservers = new Set<(reason: string) => void>();
  /** Calls each observer; one that throws is logged and stops neither the others nor the caller. */
  function notifyAll<T>(fns: Set<(value: T) => void>, value: T, what: string): void {
    const failed = (error: unknown) => logger.error({ err: error }, `pgrealtime: ${what} threw`);
    for (const observer of fns) {
      try {
        const result: unknown = observer(value);
        if (isThenable(result)) result.then(undefined, failed);
      } catch (error) {
        failed(error);
      }
    }
  }

  const receiver = new Receiver({
    store,
    storage,
    secret,
    pollMs: resolved.heartbeatMs,
    logger,
    hooks,
    route: (event, tag) => router.route(event, tag),
    async reset(reason) {
      logger.warn({ reason }, "pgrealtime: events may have been lost; told every client to reset");
      // The cursor to go on from: the newest row, so the next reconnect is not reset again.
      const newest = reason === "history-changed" ? await store.newest().catch(() => null) : null;
      for (const connection of router.connections()) {
        const id =
          newest === null
            ? undefined
            : newest.createdMicros === null
              ? newest.id.toString()
              : cursorToken(newest.id.toString(), rowTag(newest.createdMicros), connection.identityTag);
        connection.send(namedFrame("reset", { reason }, id));
      }
      notifyAll(resetObservers, reason, "a subscribe onReset");
    },
    disconnect: (userId) => streams.disconnect(userId),
  });
  const listener = new Listener({
    connection: listenConnectionConfig(resolved),
    channel: store.channel,
    heartbeatMs: resolved.heartbeatMs,
    logger,
    onPayload: (payload) => receiver.notification(payload),
    onAttempt: (listening) => receiver.attempt(listening),
    onIdleSessionTimeout(timeoutMs) {
      // Our own pool lets idle connections go before the server ends them, so none is ended under a query.
      const config = (pool as pg.Pool & { options: pg.PoolConfig }).options;
      if (ownsPool && (config.idleTimeoutMillis ?? 10_000) > timeoutMs / 2) {
        config.idleTimeoutMillis = Math.max(1, Math.floor(timeoutMs / 2));
      }
    },
    onState(state, previous, error) {
      if ((state === "reconnecting" || state === "failed") && error !== undefined) {
        notifyAll(observers.error, error, 'an on("error") listener');
      }
      if (state === "listening" && previous === "reconnecting") {
        notifyAll(observers.reconnect, undefined, 'an on("reconnect") listener');
      }
    },
  });
  const streams = new Streams({
    router,
    heartbeat,
    logger,
    retryMs: resolved.retryMs,
    allowAnonymous: resolved.allowAnonymous,
    maxConnections: resolved.maxConnections,
    maxConnectionsPerUser: resolved.maxConnectionsPerUser,
    maxBufferedBytes: resolved.maxBufferedBytes,
    async waitForListener() {
      if (closed) return false;
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, LISTEN_WAIT_MS);
      });
      let receiving = false;
      const started = listener
        .start()
        .then(() => receiver.ready())
        .then(() => {
          receiving = true;
        });
      await Promise.race([started.catch(() => {}), timeout]);
      clearTimeout(timer);
      return receiving && listener.state === "listening" && !closed;
    },
    replay: {
      store,
      storage,
      maxReplay: resolved.maxReplay,
      stallMs: 2 * resolved.heartbeatMs,
      logger,
      hooks,
      frameFor: (event, tag, connection) => router.frameFor(event, tag, connection),
      sync: () => receiver.sync(),
    },
  });
  const publisher = new Publisher({
    store,
    storage,
    secret,
    maxPayloadBytes: resolved.maxPayloadBytes,
    assertOpen,
  });
  const host: Host = { basePath: resolved.basePath, logger, streams, authenticate: resolved.authenticate };

  const realtime: Realtime = {
    publish: (input, publishOptions) => publisher.publish("user", input, publishOptions) as never,
    publishGlobal: (input, publishOptions) => publisher.publish("global", input, publishOptions) as never,
    publishSystem: (input, publishOptions) => publisher.publish("system", input, publishOptions) as never,
    subscribe(handler, subscribeOptions?: SubscribeOptions) {
      assertOpen();
      if (typeof handler !== "function") throw new TypeError("subscribe takes a function (event) => void");
      refuseUnknownKeys(subscribeOptions ?? {}, ["onReset"], "subscribe", "option");
      const onReset = subscribeOptions?.onReset;
      if (onReset !== undefined && typeof onReset !== "function") {
        throw new TypeError("subscribe's onReset must be a function (reason) => void");
      }
      listener.start().catch(() => {});
      const unsubscribe = router.subscribe(handler as (event: RealtimeEvent) => void);
      if (onReset) resetObservers.add(onReset);
      return () => {
        unsubscribe();
        if (onReset) resetObservers.delete(onReset);
      };
    },
    async ready() {
      assertOpen();
      await listener.start();
      await receiver.ready();
      assertOpen();
    },
    get listenerState() {
      return listener.state;
    },
    on(name: "reconnect" | "error", observer: (error: unknown) => void) {
      if (!Object.hasOwn(observers, name)) {
        throw new TypeError(`on: unknown event "${String(name)}"; use "reconnect" or "error"`);
      }
      if (typeof observer !== "function") throw new TypeError(`on("${name}") takes a function`);
      observers[name].add(observer);
      return () => {
        observers[name].delete(observer);
      };
    },
    async currentEventId() {
      assertOpen();
      return (await store.newest()).id.toString();
    },
    async disconnectUser(userId) {
      assertOpen();
      const id = normalizeUserId(userId);
      // Every process, this one included, takes the command in order with the events around it: an event
      // published after this resolves comes after the command everywhere.
      if (storage) await store.insertControl("disconnect", id);
      else await store.notify(encodeDisconnect(id, secret));
    },
    get connectionCount() {
      return router.connectionCount;
    },
    handler: createFetchHandler(host),
    scriptTag: (tagOptions) => scriptTag(resolved.basePath, tagOptions),
    async migrate(migrateOptions) {
      assertOpen();
      return migrate(pool, resolved.schema, migrateOptions);
    },
    close() {
      closed ??= (async () => {
        streams.closeAll();
        heartbeat.update(false);
        receiver.close();
        await listener.close();
        if (ownsPool) await pool.end();
      })();
      return closed;
    },
  };
  return attachHost(realtime, host) as unknown as Realtime<Events>;
}

/** See {@link Realtime.scriptTag}. */
function scriptTag(
  basePath: string,
  options: { lastEventId?: string | null; autoConnect?: boolean } | null | undefined,
): string {
  refuseUnknownKeys(options ?? {}, ["lastEventId", "autoConnect"], "scriptTag", "option");
  const autoConnect = options?.autoConnect;
  if (autoConnect !== undefined && typeof autoConnect !== "boolean") {
    throw new TypeError("scriptTag: autoConnect must be true or false");
  }
  let attributes = `src="${basePath}/client.js" defer`;
  const lastEventId = options?.lastEventId;
  if (lastEventId !== undefined && lastEventId !== null) {
    // Validated, so it needs no HTML escaping: digits only, and a bigint.
    if (!isEventId(lastEventId)) {
      throw new TypeError(`lastEventId must be a decimal event id, got ${JSON.stringify(lastEventId)}`);
    }
    attributes += ` data-last-event-id="${lastEventId}"`;
  }
  if (autoConnect === false) attributes += ` data-auto-connect="false"`;
  return `<script ${attributes}></script>`;
}

function listenConnectionConfig(options: RealtimeOptions): pg.ClientConfig {
  const connectionString = options.listenConnectionString ?? options.connectionString;
  if (connectionString) return { connectionString };
  // The app's pool: reuse its connection settings (not its connections) for a dedicated session.
  return { ...(options.pool as pg.Pool & { options: pg.PoolConfig }).options };
}
