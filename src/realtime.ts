// Wiring only: builds the parts of one instance and gives them their public face. Each path lives in its
// own module: publish.ts, listener.ts, receiver.ts, router.ts, stream.ts, replay.ts, store.ts.
import type pg from "pg";
import { createFetchHandler } from "./adapters/fetch.js";
import type { Realtime, SubscribeOptions } from "./api.js";
import { encodeDisconnect } from "./channel.js";
import { HeartbeatSweep } from "./connection.js";
import { attachHost, type Host, scriptTag } from "./dispatch.js";
import { normalizeUserId, refuseUnknownKeys } from "./event.js";
import { type BeforeSend, Hooks, type OnReceive } from "./hooks.js";
import { Listener } from "./listener.js";
import { checkSchemaVersion, type MigrateResult, migrate } from "./migrate.js";
import { type Names, namesFor } from "./names.js";
import { Observers } from "./observers.js";
import { Operations } from "./operations.js";
import { type ResolvedOptions, resolveOptions } from "./options.js";
import { idleBefore, listenConnectionConfig, openPool } from "./pool.js";
import { closedError, Publisher } from "./publish.js";
import { Receiver, receivingWithin } from "./receiver.js";
import { Router } from "./router.js";
import { Store } from "./store.js";
import { Streams } from "./stream.js";
import type {
  DefaultEvents,
  EventMap,
  ListenerState,
  PruneOptions,
  PublishOptions,
  RealtimeEvent,
  RealtimeOptions,
  UserId,
} from "./types.js";

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
  const instance = new Instance(resolveOptions(options as unknown as RealtimeOptions));
  return attachHost(instance, instance.host) as unknown as Realtime<Events>;
}

const PUBLIC_METHODS = [
  "publish",
  "publishGlobal",
  "publishSystem",
  "subscribe",
  "ready",
  "on",
  "currentEventId",
  "disconnectUser",
  "scriptTag",
  "migrate",
  "close",
] as const;

class Instance implements Realtime {
  readonly host: Host;
  readonly handler: (request: Request) => Promise<Response>;
  private readonly ownsPool: boolean;
  private readonly pool: pg.Pool;
  private readonly store: Store;
  private readonly router: Router;
  private readonly heartbeat: HeartbeatSweep;
  private readonly receiver: Receiver;
  private readonly listener: Listener;
  private readonly streams: Streams;
  private readonly publisher: Publisher;
  private readonly observers: Observers;
  private readonly names: Names;
  private readonly ops: Operations;
  readonly events: Realtime["events"];
  private closed: Promise<void> | undefined;

  constructor(private readonly options: ResolvedOptions) {
    const { logger } = options;
    this.observers = new Observers(logger);
    ({ pool: this.pool, owned: this.ownsPool } = openPool(options, logger));
    this.names = namesFor(options.schema, options.table);
    this.store = new Store(this.pool, this.names);
    this.ops = new Operations({
      pool: this.pool,
      store: this.store,
      names: this.names,
      storage: options.storage,
      activity: options.activity,
      heartbeatMs: options.heartbeatMs,
      logger,
      retention: options.retention,
      owner: this,
      assertOpen: () => this.assertOpen(),
      connections: () => this.router.connectionSummary(),
      listenerState: () => this.listener.state,
    });
    this.events = this.ops.events;
    const hooks = new Hooks(
      options.onReceive as OnReceive | undefined,
      options.beforeSend as BeforeSend | undefined,
      options.hookTimeoutMs,
      logger,
      this.ops.counters,
    );
    this.router = new Router(logger, hooks, this.ops.counters, this.ops.activity);
    this.heartbeat = new HeartbeatSweep(options.heartbeatMs, () => this.router.connections());
    this.receiver = new Receiver({
      store: this.store,
      storage: options.storage,
      secret: options.secret ?? null,
      pollMs: options.heartbeatMs,
      logger,
      hooks,
      route: (event, row) => this.router.route(event, row),
      reset: (reason) => this.reset(reason),
      disconnect: (userId) => this.streams.disconnect(userId),
    });
    this.listener = this.createListener();
    this.streams = this.createStreams(hooks);
    this.publisher = new Publisher({
      store: this.store,
      storage: options.storage,
      secret: options.secret ?? null,
      maxPayloadBytes: options.maxPayloadBytes,
      assertOpen: () => this.assertOpen(),
    });
    this.host = {
      basePath: options.basePath,
      storage: options.storage,
      logger,
      streams: this.streams,
      authenticate: options.authenticate,
      heartbeatMs: options.heartbeatMs,
      retryMs: options.retryMs,
    };
    this.handler = createFetchHandler(this.host);
    // Methods work detached too (`const { publish } = realtime`), as on a plain object.
    for (const name of PUBLIC_METHODS) {
      const method = this[name] as (...args: unknown[]) => unknown;
      Object.defineProperty(this, name, { value: method.bind(this), enumerable: true });
    }
  }

  publish(input: never, publishOptions?: PublishOptions) {
    return this.publisher.publish("user", input, publishOptions) as never;
  }

  publishGlobal(input: never, publishOptions?: PublishOptions) {
    return this.publisher.publish("global", input, publishOptions) as never;
  }

  publishSystem(input: never, publishOptions?: PublishOptions) {
    return this.publisher.publish("system", input, publishOptions) as never;
  }

  subscribe(handler: (event: never) => void, subscribeOptions?: SubscribeOptions): () => void {
    this.assertOpen();
    if (typeof handler !== "function") throw new TypeError("subscribe takes a function (event) => void");
    refuseUnknownKeys(subscribeOptions ?? {}, ["onReset"], "subscribe", "option");
    const onReset = subscribeOptions?.onReset;
    const removeOnReset =
      onReset === undefined ? () => {} : this.observers.add("reset", onReset, "subscribe's onReset");
    this.listener.start().catch(() => {});
    const unsubscribe = this.router.subscribe(handler as (event: RealtimeEvent) => void);
    return () => {
      unsubscribe();
      removeOnReset();
    };
  }

  async ready(): Promise<void> {
    this.assertOpen();
    await this.listener.start();
    // A schema that is not migrated (or migrated by a newer version) is told here, not retried in silence.
    if (this.options.storage) await checkSchemaVersion(this.pool, this.names);
    await this.receiver.ready();
    this.assertOpen();
  }

  get listenerState(): ListenerState {
    return this.listener.state;
  }

  on(name: "reconnect" | "error", observer: (error: unknown) => void): () => void {
    // "reset" is subscribe's own (onReset), not a name of on().
    if (name !== "error" && name !== "reconnect") {
      throw new TypeError(`on: unknown event "${String(name)}"; use "reconnect" or "error"`);
    }
    return this.observers.add(name, observer, `on("${name}")`);
  }

  async currentEventId(): Promise<string> {
    this.assertOpen();
    return (await this.store.newest()).id.toString();
  }

  async disconnectUser(userId: UserId): Promise<void> {
    this.assertOpen();
    const id = normalizeUserId(userId);
    // Every process, this one included, takes the command in order with the events around it: an event
    // published after this resolves comes after the command everywhere.
    if (this.options.storage) await this.store.insertControl("disconnect", id);
    else await this.store.notify(encodeDisconnect(id, this.options.secret ?? null));
  }

  readonly replay = ((ids: string | readonly string[]) => this.ops.replay(ids)) as Realtime["replay"];
  readonly prune = (pruneOptions: PruneOptions) => this.ops.prune(pruneOptions);
  readonly stats = () => this.ops.stats();
  readonly status = () => this.ops.status();

  get connectionCount(): number {
    return this.router.connectionCount;
  }

  scriptTag(tagOptions?: { lastEventId?: string | null; autoConnect?: boolean } | null): string {
    return scriptTag(this.options.basePath, tagOptions);
  }

  async migrate(migrateOptions?: { dryRun?: boolean }): Promise<MigrateResult> {
    this.assertOpen();
    // A misspelt dryRun must never run the DDL.
    refuseUnknownKeys(migrateOptions ?? {}, ["dryRun"], "migrate", "option");
    return migrate(this.pool, this.names, migrateOptions);
  }

  close(): Promise<void> {
    this.closed ??= (async () => {
      this.streams.closeAll();
      this.host.admin?.close();
      // Publishes called before close() still complete.
      await this.publisher.drain();
      this.heartbeat.update(false);
      this.receiver.close();
      await this.ops.close();
      await this.listener.close();
      if (this.ownsPool) await this.pool.end();
    })();
    return this.closed;
  }

  private assertOpen(): void {
    if (this.closed) throw closedError();
  }

  /** Tells every stream and `onReset` handler that events were lost, with the cursor to go on from. */
  private async reset(reason: "history-changed" | "listener-reconnected"): Promise<void> {
    this.options.logger.warn({ reason }, "pgrealtime: events may have been lost; told every client to reset");
    // The newest row, so that the next reconnect is not reset again.
    const newest = reason === "history-changed" ? await this.store.newest().catch(() => null) : null;
    this.streams.resetAll(reason, newest);
    this.observers.notify("reset", reason);
  }

  private createListener(): Listener {
    return new Listener({
      connection: listenConnectionConfig(this.options),
      channel: this.store.channel,
      heartbeatMs: this.options.heartbeatMs,
      logger: this.options.logger,
      onPayload: (payload) => this.receiver.notification(payload),
      onAttempt: (listening) => this.receiver.attempt(listening),
      onIdleSessionTimeout: (timeoutMs) => {
        if (this.ownsPool) idleBefore(this.pool, timeoutMs);
      },
      onState: (state, previous, error) => {
        if ((state === "reconnecting" || state === "failed") && error !== undefined) {
          this.observers.notify("error", error);
        }
        if (state === "listening") this.ops.processes?.start();
        if (state === "listening" && previous === "reconnecting") {
          this.ops.counters.reconnects++;
          this.ops.counters.lastReconnectAt = new Date();
          this.observers.notify("reconnect", undefined);
        }
      },
    });
  }

  private createStreams(hooks: Hooks): Streams {
    const { options } = this;
    return new Streams({
      router: this.router,
      heartbeat: this.heartbeat,
      logger: options.logger,
      retryMs: options.retryMs,
      allowAnonymous: options.allowAnonymous,
      maxConnections: options.maxConnections,
      maxConnectionsPerUser: options.maxConnectionsPerUser,
      maxBufferedBytes: options.maxBufferedBytes,
      waitForListener: async () =>
        !this.closed && (await receivingWithin(this.listener, this.receiver, LISTEN_WAIT_MS)) && !this.closed,
      replay: {
        store: this.store,
        storage: options.storage,
        maxReplay: options.maxReplay,
        stallMs: 2 * options.heartbeatMs,
        logger: options.logger,
        hooks,
        frameFor: (event, tag, connection) => this.router.frameFor(event, tag, connection),
        sync: () => this.receiver.sync(),
        counters: this.ops.counters,
        activity: this.ops.activity,
      },
    });
  }
}
