import type { MigrateResult } from "./migrate.js";
import type {
  ActivityEntry,
  DefaultEvents,
  EventFilters,
  EventMap,
  EventOf,
  EventPage,
  ListenerState,
  PruneOptions,
  PruneResult,
  PublishCommon,
  PublishInput,
  PublishOptions,
  PublishSystemInput,
  RealtimeEvent,
  RealtimeStats,
  RealtimeStatus,
  StoredEvent,
  UserId,
} from "./types.js";

/** `realtime.events`: the stored events, read back (storage on). */
export interface StoredEvents {
  /**
   * One stored event with its private data, `replayOf` and `status`, or `null` when there is none.
   *
   * @throws TypeError when `id` is not a decimal event id; RealtimeError `STORAGE_OFF`, `CLOSED`.
   * @example const event = await realtime.events.get("1234"); event?.privateData
   */
  get(id: string): Promise<StoredEvent | null>;
  /**
   * One page of stored events, newest first, by index (never a scan or a count of the table).
   *
   * @throws TypeError on an unknown filter or a malformed value; RealtimeError `STORAGE_OFF`, `CLOSED`.
   * @example
   * let page = await realtime.events.list({ type: "task_complete", limit: 100 });
   * while (page.next) page = await realtime.events.list({ type: "task_complete", before: page.next });
   */
  list(filters?: EventFilters): Promise<EventPage>;
  /**
   * The delivery log of one event, oldest first (empty for an unknown id or with `activity: false`).
   * Entries are written in batches about a second after the delivery.
   */
  activity(id: string): Promise<ActivityEntry[]>;
}

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
  /** The stored events: get one, list them, read who they reached. */
  readonly events: StoredEvents;
  /**
   * Sends stored events again as new events (new ids, same type, scope, user and detail, never their
   * private data), each with `replayOf` set to the original's id and logged on the original. A client
   * that saw the original shows the replay too. All or nothing: one missing id replays none.
   *
   * @returns the new event (for one id) or the new events in the order of `ids`.
   * @throws TypeError for a malformed id; RealtimeError `NOT_FOUND` naming the missing ids,
   *   `STORAGE_OFF`, `CLOSED`.
   * @example await realtime.replay("1234");
   */
  replay(id: string): Promise<RealtimeEvent>;
  replay(ids: readonly string[]): Promise<RealtimeEvent[]>;
  /**
   * Deletes stored events created longer ago than `olderThan` (and their activity), in batches of
   * 1000 rows, each its own transaction, so publishers and streams are not held up. A client resuming
   * from below a deleted id gets `event: reset` with reason `pruned`.
   *
   * @throws TypeError / RangeError for a malformed option; RealtimeError `STORAGE_OFF`, `CLOSED`.
   * @example await realtime.prune({ olderThan: "30d" });
   */
  prune(options: PruneOptions): Promise<PruneResult>;
  /** This process's counters: connections, events, listener, replays, activity writes. */
  stats(): RealtimeStats;
  /**
   * The state of the installation: migration, table size, oldest and newest events, the processes
   * listening now (each records itself on its heartbeat), and the NOTIFY queue's usage.
   */
  status(): Promise<RealtimeStatus>;
  /** How many event streams are open in this process. */
  readonly connectionCount: number;
  /**
   * The Fetch API handler: `GET {basePath}/events` (the stream) and `GET {basePath}/client.js`;
   * `404` for any other path.
   *
   * @param server what the runtime passes as its fetch handler's second argument. Bun's server
   *   (`Bun.serve({ fetch: realtime.handler })` passes it): each event stream's per-request idle timeout
   *   is lifted with `server.timeout(request, 0)`, since Bun's default (10 s) is shorter than
   *   `heartbeatMs`. Anything without a `timeout` method is ignored.
   * @example Bun.serve({ fetch: realtime.handler });
   */
  handler(request: Request, server?: unknown): Promise<Response>;
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
