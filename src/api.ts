import type { MigrateResult } from "./migrate.js";
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
  UserId,
} from "./types.js";

/** Options of `subscribe`. */
export interface SubscribeOptions {
  /**
   * Called when events may have been lost for good: without storage, after the LISTEN connection was
   * down (`"listener-reconnected"`); with storage, when the database lost history this process had
   * read (`"history-changed"`: restored from a backup, failed over). Otherwise missed events are caught up.
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
  /**
   * Ends every open stream of `userId` in every process (sign-out, revoked access); their clients
   * reconnect and `authenticate` decides again. Resolves once the command is committed: from then on,
   * no event reaches those streams. Events are ordered with the command, so none published after it
   * resolves slips through on another process.
   *
   * @throws TypeError for an invalid user id; RealtimeError `CLOSED`, `MIGRATION_REQUIRED`.
   * @example app.post("/logout", async (req, res) => { await realtime.disconnectUser(req.user.id); … });
   */
  disconnectUser(userId: UserId): Promise<void>;
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
