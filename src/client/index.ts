/**
 * The pgrealtime browser client: one Server-Sent Events stream turned into DOM events.
 *
 * Dependency-free and DOM-only, so the same code runs from a bundler (`pgrealtime/client`) and from the
 * script tag the server serves at `{basePath}/client.js`.
 *
 * @module
 */

import type { DefaultEvents, EventMap } from "../event-map.js";
import type { BrowserScope } from "./dispatcher.js";
import { createDispatcher } from "./dispatcher.js";
import { openTransport } from "./transport.js";

export type { DefaultEvents, EventMap, JsonObject, JsonValue } from "../event-map.js";
export type { BrowserScope } from "./dispatcher.js";
export type { RealtimeEventMap } from "./event-map.js";

/**
 * The DOM event dispatched for every application event, as `rt:<type>` and, when the detail has an
 * `":id"` key, `rt:<type>:<":id">` too.
 *
 * `detail` is exactly the published detail (equal as JSON; key order may differ). The event's own facts
 * ride on the event object, never inside `detail`.
 *
 * Typed listeners: {@link RealtimeConnection.on}, or {@link RealtimeEventMap} merged into `WindowEventMap`.
 *
 * @example
 * window.addEventListener("rt:task_complete", (e) => {
 *   const event = e as RealtimeDomEvent<{ taskId: number }>;
 *   console.log(event.id, event.scope, event.replayOf, event.detail.taskId);
 * });
 */
export interface RealtimeDomEvent<Detail = Record<string, unknown>> extends CustomEvent<Detail> {
  /**
   * The event's own id (`data.id`: a decimal string with storage on), the key of de-duplication. Not the
   * resume cursor: that is {@link RealtimeConnection.lastEventId}, an opaque token.
   */
  readonly id: string;
  /** `"user"` when published with `publish`, `"global"` when published with `publishGlobal`. */
  readonly scope: BrowserScope;
  /** The id of the stored event this one replays (`realtime.replay()`), `null` for an original. */
  readonly replayOf: string | null;
}

/** Options of {@link connect}. Every field is optional. */
export interface ConnectOptions {
  /** The stream's URL, absolute or relative to the page. Default `"/realtime/events"`. */
  url?: string;
  /** Prepended to every dispatched event name (`rt:task_complete`, `rt:connected`). Default `"rt:"`. */
  prefix?: string;
  /** Where events are dispatched. Default `window`. */
  target?: EventTarget;
  /** Sends cookies on a cross-origin stream (`EventSource` `withCredentials`). Default `false`. */
  withCredentials?: boolean;
  /**
   * The starting cursor: where the page's state stands, usually rendered by the server with the page
   * (`realtime.scriptTag({ lastEventId })`, an event id such as `realtime.currentEventId()`, or a cursor
   * token read from {@link RealtimeConnection.lastEventId}), so events published between render and
   * connect are delivered. Default `null`: start live, with nothing replayed.
   */
  lastEventId?: string | number | null;
  /**
   * Milliseconds without any message after which the stream is presumed dead and reopened, resuming
   * from the cursor. It bounds the wait for the server's `connected` event on every attempt. On an open
   * stream it applies from the first heartbeat the page sees: the server pings (`event: ping`) so
   * that no stream stays silent longer than its `heartbeatMs` (default 15000); keep this well above
   * that. Until a stream has shown a heartbeat, silence alone does not cut it (a server whose
   * heartbeats are comment lines, which `EventSource` never shows, is not mistaken for a dead one),
   * except when the page becomes visible again after being hidden at least this long with nothing
   * received. A page that becomes visible checks at once, since timers of hidden tabs are throttled.
   * `null` or `0` disables all of this. Default `45000`.
   */
  heartbeatTimeoutMs?: number | null;
  /**
   * Milliseconds of the first reconnect delay's ceiling; each failed attempt doubles it, up to
   * `retryMaxMs`, and the actual delay is drawn uniformly below the ceiling (full jitter). Reset once the
   * server answers with `connected`. Must be > 0. Default `1000`.
   */
  retryBaseMs?: number;
  /** Milliseconds the reconnect delay's ceiling never exceeds. Default `30000`. */
  retryMaxMs?: number;
}

/**
 * The handle {@link connect} returns; `Events` is the map the server was created with
 * (`createRealtime<Events>()`), {@link DefaultEvents} when none was given.
 */
export interface RealtimeConnection<Events extends EventMap = DefaultEvents> {
  /**
   * Calls `handler` with the detail and the DOM event of every `rt:<type>` event (with the connection's
   * prefix) dispatched on its target: the very events `addEventListener` sees, de-duplicated once, so a
   * resume that repeats an event never calls it twice. Not called for `rt:<type>:<id>`. A handler that
   * throws is reported like any throwing DOM listener (the window's `error` event, the console) and the
   * other handlers still run. {@link RealtimeConnection.close} unsubscribes every handler.
   *
   * @returns a function that unsubscribes `handler` (calling it again does nothing).
   * @throws TypeError when `handler` is not a function.
   * @example
   * const connection = connect<Events>();
   * const off = connection.on("task_complete", (detail, event) => show(detail.taskId, event.id));
   * off(); // e.g. when the component unmounts
   */
  on<K extends keyof Events & string>(
    type: K,
    handler: (detail: Events[K], event: RealtimeDomEvent<Events[K]>) => void,
  ): () => void;
  /**
   * Ends the stream for good: the `EventSource`, every timer and every listener the client added are
   * gone. Dispatches `rt:disconnected` if the stream was connected. Calling it again does nothing.
   */
  close(): void;
  /**
   * The cursor sent as `?lastEventId=` on reconnect, an opaque token (e.g. `"1234.3k9zq.a0b1"`): the
   * `id:` line of the last event dispatched, else the starting cursor; an `rt:reset` replaces it with the
   * one the server sent (`null`: start live). Store or compare it only as a whole string; the event's
   * own id is {@link RealtimeDomEvent.id}.
   */
  readonly lastEventId: string | null;
  /** Whether the stream is open and the server has sent `connected`. */
  readonly connected: boolean;
}

const DEFAULT_URL = "/realtime/events";
const DEFAULT_PREFIX = "rt:";
const DEFAULT_HEARTBEAT_TIMEOUT_MS = 45_000;
const DEFAULT_RETRY_BASE_MS = 1_000;
const DEFAULT_RETRY_MAX_MS = 30_000;

/**
 * Opens the realtime stream and dispatches its events on `target` (default `window`):
 *
 * - `rt:<type>` for every application event, `detail` being exactly the published detail, `id` and
 *   `scope` on the event object ({@link RealtimeDomEvent}); `rt:<type>:<id>` too when `detail[":id"]` is
 *   a string or number;
 * - `rt:connected` (detail `{ userId }`) and `rt:disconnected` (detail `null`) on each change of state:
 *   the client starts disconnected, so a refused first attempt fires nothing, and a refused retry no more;
 * - `rt:reset` (detail `{ reason }`) when the server cannot resume from the cursor: reload the state.
 *   The client then goes on from the cursor the server sent with it (none with storage off), so the next
 *   reconnect resumes from there instead of being reset again.
 *
 * After any loss (network error, non-200 answer, missed heartbeats) it reconnects by itself, forever, with
 * capped exponential backoff and full jitter, resuming from the cursor of the last event it dispatched; an
 * event id already dispatched is never dispatched again. A frame no server publish can produce (a reserved
 * or malformed `type`, a `detail` that is not a plain object) is ignored and never moves the cursor.
 *
 * `Events` (default {@link DefaultEvents}) types {@link RealtimeConnection.on}; it is not checked at run
 * time: pass the map the server was created with.
 *
 * @throws TypeError outside a browser window without `target`, or without `EventSource`.
 * @throws RangeError for a negative or non-finite `heartbeatTimeoutMs`, or a `retryBaseMs` / `retryMaxMs`
 *   that is not > 0.
 * @example
 * import { connect } from "pgrealtime/client";
 *
 * type Events = { task_complete: { taskId: number } };
 * const connection = connect<Events>({ url: "/realtime/events", lastEventId: serverRenderedCursor });
 * connection.on("task_complete", (detail) => console.log(detail.taskId));
 * // later, e.g. when the component unmounts:
 * connection.close();
 */
export function connect<Events extends EventMap = DefaultEvents>(
  options: ConnectOptions = {},
): RealtimeConnection<Events> {
  const target = options.target ?? (typeof window === "undefined" ? undefined : window);
  if (target === undefined) {
    throw new TypeError("pgrealtime: connect() outside a browser window needs a `target` option");
  }
  if (typeof EventSource === "undefined") {
    throw new TypeError("pgrealtime: this environment has no EventSource");
  }
  const heartbeatTimeoutMs = optionalMs(options.heartbeatTimeoutMs, DEFAULT_HEARTBEAT_TIMEOUT_MS);
  const retryBaseMs = positiveMs(options.retryBaseMs, DEFAULT_RETRY_BASE_MS);
  const retryMaxMs = Math.max(retryBaseMs, positiveMs(options.retryMaxMs, DEFAULT_RETRY_MAX_MS));
  const prefix = options.prefix ?? DEFAULT_PREFIX;
  const dispatcher = createDispatcher(target, prefix);
  // The unsubscribe functions of `on`, so that close() removes every listener the client added.
  const subscriptions = new Set<() => void>();
  const transport = openTransport(
    {
      url: options.url ?? DEFAULT_URL,
      withCredentials: options.withCredentials === true,
      heartbeatTimeoutMs,
      retryBaseMs,
      retryMaxMs,
      cursor: cursorOf(options.lastEventId),
    },
    {
      connected: dispatcher.connected,
      disconnected: dispatcher.disconnected,
      reset(data, id) {
        // The reset's `id:` line is the cursor to continue from (the newest event when it was sent); an
        // empty one, as with storage off, means none. Keeping the old cursor would reset every reconnect.
        transport.cursor = id;
        dispatcher.reset(data);
      },
      message(data, id) {
        // Only an event actually dispatched moves the cursor, and before its DOM events, so that their
        // listeners read the cursor of the event they handle. No `id:` line: the cursor stays.
        dispatcher.message(data, () => {
          if (id !== null) transport.cursor = id;
        });
      },
    },
  );

  return {
    on(type, handler) {
      if (typeof handler !== "function")
        throw new TypeError("pgrealtime: on(type, handler) needs a function");
      const name = prefix + type;
      // A DOM listener, not a registry of our own: one stream, one de-duplication, and the browser's own
      // isolation of a throwing listener.
      const listener = (event: Event): void => {
        const domEvent = event as RealtimeDomEvent<never>;
        handler(domEvent.detail, domEvent);
      };
      const off = (): void => {
        subscriptions.delete(off);
        target.removeEventListener(name, listener);
      };
      target.addEventListener(name, listener);
      subscriptions.add(off);
      return off;
    },
    close(): void {
      dispatcher.stop();
      transport.close();
      for (const off of subscriptions) off();
    },
    get lastEventId(): string | null {
      return transport.cursor;
    },
    get connected(): boolean {
      return transport.connected;
    },
  };
}

function cursorOf(value: string | number | null | undefined): string | null {
  if (value === null || value === undefined) return null;
  const cursor = String(value).trim();
  return cursor === "" ? null : cursor;
}

/** `null` and `0` mean "off". */
function optionalMs(value: number | null | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (value === null) return 0;
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw new RangeError(`pgrealtime: expected a number of milliseconds >= 0, got ${String(value)}`);
  }
  return value;
}

/** A zero retry delay would hammer a failing server in a tight loop, so it is refused. */
function positiveMs(value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
    throw new RangeError(`pgrealtime: expected a number of milliseconds > 0, got ${String(value)}`);
  }
  return value;
}
