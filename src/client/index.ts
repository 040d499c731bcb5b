/**
 * The pgrealtime browser client: one Server-Sent Events stream turned into DOM events.
 *
 * Dependency-free and DOM-only, so the same code runs from a bundler (`pgrealtime/client`) and from the
 * script tag the server serves at `{basePath}/client.js`.
 *
 * @module
 */

/** Where an application event was published: one user's connections, or every connection. */
export type BrowserScope = "user" | "global";

/**
 * The DOM event dispatched for every application event, as `rt:<type>` and, when the detail has an
 * `":id"` key, `rt:<type>:<":id">` too.
 *
 * `detail` is exactly the published detail (equal as JSON; key order may differ). The event's own facts
 * ride on the event object, never inside `detail`.
 *
 * @example
 * window.addEventListener("rt:task_complete", (e) => {
 *   const event = e as RealtimeDomEvent<{ taskId: number }>;
 *   console.log(event.id, event.scope, event.detail.taskId);
 * });
 */
export interface RealtimeDomEvent<Detail = Record<string, unknown>> extends CustomEvent<Detail> {
  /** The event's id (a decimal string with storage on); the cursor the client resumes from. */
  readonly id: string;
  /** `"user"` when published with `publish`, `"global"` when published with `publishGlobal`. */
  readonly scope: BrowserScope;
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
   * The starting cursor: the id of the last event the page already reflects, usually rendered by the
   * server with the page (`realtime.scriptTag({ lastEventId })`), so events published between render and
   * connect are delivered. Default `null`: start live, with nothing replayed.
   */
  lastEventId?: string | number | null;
  /**
   * Milliseconds without any message after which the stream is presumed dead and reopened, resuming
   * from the last id. It bounds the wait for the server's `connected` event on every attempt. On an open
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

/** The handle {@link connect} returns. */
export interface RealtimeConnection {
  /**
   * Ends the stream for good: the `EventSource`, every timer and every listener the client added are
   * gone. Dispatches `rt:disconnected` if the stream was connected. Calling it again does nothing.
   */
  close(): void;
  /**
   * The cursor sent as `?lastEventId=` on reconnect: the id of the last event dispatched, else the
   * starting cursor; an `rt:reset` replaces it with the one the server sent (`null`: start live).
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
/** Resume overlaps (and a native reconnect racing ours) repeat recent ids, not ancient ones. */
const REMEMBERED_IDS = 1_000;

/**
 * Opens the realtime stream and dispatches its events on `target` (default `window`):
 *
 * - `rt:<type>` for every application event, `detail` being exactly the published detail, `id` and
 *   `scope` on the event object ({@link RealtimeDomEvent}); `rt:<type>:<id>` too when `detail[":id"]` is
 *   a string or number;
 * - `rt:connected` (detail `{ userId }`) and `rt:disconnected` (detail `null`) on each change of state:
 *   the client starts disconnected, so a refused first attempt fires nothing, and a refused retry no more;
 * - `rt:reset` (detail `{ reason }`) when the server cannot resume from the last id: reload the state.
 *   The client then goes on from the cursor the server sent with it (none with storage off), so the next
 *   reconnect resumes from there instead of being reset again.
 *
 * After any loss (network error, non-200 answer, missed heartbeats) it reconnects by itself, forever, with
 * capped exponential backoff and full jitter, resuming from the last id it dispatched; an id already
 * dispatched is never dispatched again.
 *
 * @example
 * import { connect } from "pgrealtime/client";
 *
 * const connection = connect({ url: "/realtime/events", lastEventId: serverRenderedCursor });
 * window.addEventListener("rt:task_complete", (e) => console.log((e as CustomEvent).detail));
 * // later, e.g. when the component unmounts:
 * connection.close();
 */
export function connect(options: ConnectOptions = {}): RealtimeConnection {
  const target = options.target ?? (typeof window === "undefined" ? undefined : window);
  if (target === undefined) {
    throw new TypeError("pgrealtime: connect() outside a browser window needs a `target` option");
  }
  if (typeof EventSource === "undefined") {
    throw new TypeError("pgrealtime: this environment has no EventSource");
  }
  const url = options.url ?? DEFAULT_URL;
  const prefix = options.prefix ?? DEFAULT_PREFIX;
  const withCredentials = options.withCredentials === true;
  const heartbeatTimeoutMs = optionalMs(options.heartbeatTimeoutMs, DEFAULT_HEARTBEAT_TIMEOUT_MS);
  const retryBaseMs = positiveMs(options.retryBaseMs, DEFAULT_RETRY_BASE_MS);
  const retryMaxMs = Math.max(retryBaseMs, positiveMs(options.retryMaxMs, DEFAULT_RETRY_MAX_MS));

  let lastEventId = cursorOf(options.lastEventId);
  // Insertion-ordered, so the oldest id is the first one to forget.
  const dispatched = new Set<string>();
  let source: EventSource | null = null;
  let detachSource: (() => void) | null = null;
  let connected = false;
  let closed = false;
  let attempt = 0;
  let retryTimer: ReturnType<typeof setTimeout> | undefined;
  let watchdogTimer: ReturnType<typeof setTimeout> | undefined;
  let lastMessageAt = Date.now();
  let heartbeatsVisible = false;
  let hiddenAt: number | null = null;

  function emit(name: string, detail: unknown): void {
    target?.dispatchEvent(new CustomEvent(prefix + name, { detail }));
  }

  function streamUrl(): string {
    if (lastEventId === null) return url;
    const base = typeof location === "undefined" ? undefined : location.href;
    const resolved = new URL(url, base);
    resolved.searchParams.set("lastEventId", lastEventId);
    return resolved.href;
  }

  function open(): void {
    retryTimer = undefined;
    heartbeatsVisible = false;
    lastMessageAt = Date.now();
    const es = new EventSource(streamUrl(), { withCredentials });
    // A closed EventSource dispatches nothing more, but a listener may already be queued behind it.
    const own =
      <E extends Event>(handler: (event: E) => void) =>
      (event: Event): void => {
        if (es === source && !closed) handler(event as E);
      };
    const listeners: Array<[string, (event: Event) => void]> = [
      ["open", own(onActivity)],
      ["connected", own(onConnected)],
      ["message", own(onMessage)],
      ["reset", own(onReset)],
      ["ping", own(onPing)],
      ["error", own(() => lose(false))],
    ];
    for (const [name, listener] of listeners) es.addEventListener(name, listener);
    source = es;
    detachSource = () => {
      for (const [name, listener] of listeners) es.removeEventListener(name, listener);
      es.close();
    };
    armWatchdog(heartbeatTimeoutMs);
  }

  function dropSource(): void {
    detachSource?.();
    detachSource = null;
    source = null;
    clearTimeout(watchdogTimer);
    watchdogTimer = undefined;
  }

  /**
   * Every loss goes through here, including the ones native EventSource would retry by itself: its retry
   * has no backoff or jitter, resumes only with the header of its own instance, and stops for good on a
   * non-200 answer; one path of our own keeps the cursor and the backoff in one place.
   */
  function lose(immediately: boolean): void {
    dropSource();
    if (connected) {
      connected = false;
      emit("disconnected", null);
    }
    if (closed) return;
    if (immediately) {
      open();
      return;
    }
    const ceiling = Math.min(retryMaxMs, retryBaseMs * 2 ** attempt);
    attempt = Math.min(attempt + 1, 30);
    retryTimer = setTimeout(open, Math.random() * ceiling);
  }

  function retryNow(): void {
    if (retryTimer === undefined || closed) return;
    clearTimeout(retryTimer);
    open();
  }

  function onActivity(): void {
    lastMessageAt = Date.now();
  }

  function onConnected(event: MessageEvent): void {
    onActivity();
    attempt = 0;
    const changed = !connected;
    connected = true;
    armWatchdog(heartbeatTimeoutMs);
    if (!changed) return;
    const data = parseJson(event.data);
    emit("connected", isObject(data) ? data : { userId: null });
  }

  function onPing(): void {
    onActivity();
    if (heartbeatsVisible) return;
    heartbeatsVisible = true;
    armWatchdog(heartbeatTimeoutMs);
  }

  function onReset(event: MessageEvent): void {
    onActivity();
    // The server could not resume from our cursor, so the ids we remember may belong to another history
    // (a recreated table restarts at 1); keeping them could drop new events.
    dispatched.clear();
    // The reset's `id:` line is the cursor to continue from (the newest event when it was sent); an empty
    // one, as with storage off, means none. Keeping the old cursor would get a reset on every reconnect.
    lastEventId = event.lastEventId || null;
    const data = parseJson(event.data);
    const reason = isObject(data) && typeof data.reason === "string" ? data.reason : "unknown";
    emit("reset", { reason });
  }

  function onMessage(event: MessageEvent): void {
    onActivity();
    const message = parseJson(event.data);
    if (!isObject(message) || typeof message.type !== "string" || !isObject(message.detail)) return;
    const id = typeof message.id === "string" ? message.id : event.lastEventId || null;
    if (id !== null) {
      if (dispatched.has(id)) return;
      dispatched.add(id);
      if (dispatched.size > REMEMBERED_IDS) {
        const oldest = dispatched.values().next().value;
        if (oldest !== undefined) dispatched.delete(oldest);
      }
      lastEventId = id;
    }
    const scope = message.scope === "user" ? "user" : "global";
    const name = prefix + message.type;
    target?.dispatchEvent(realtimeEvent(name, message.detail, id ?? "", scope));
    const entity = message.detail[":id"];
    if ((typeof entity === "string" || typeof entity === "number") && !closed) {
      // Its own copy: a listener of the first event may have mutated the detail it was given.
      const detail = (parseJson(event.data) as { detail: Record<string, unknown> }).detail;
      target?.dispatchEvent(realtimeEvent(`${name}:${entity}`, detail, id ?? "", scope));
    }
  }

  /** Before `connected` the wait is always bounded; after it, silence means something only if heartbeats show. */
  function watching(): boolean {
    return heartbeatTimeoutMs > 0 && source !== null && (!connected || heartbeatsVisible);
  }

  function armWatchdog(delayMs: number): void {
    clearTimeout(watchdogTimer);
    watchdogTimer = undefined;
    if (watching()) watchdogTimer = setTimeout(checkSilence, delayMs);
  }

  function checkSilence(): void {
    watchdogTimer = undefined;
    if (!watching()) return;
    const silentMs = Date.now() - lastMessageAt;
    if (silentMs >= heartbeatTimeoutMs) lose(false);
    else armWatchdog(heartbeatTimeoutMs - silentMs);
  }

  function onVisibilityChange(): void {
    if (document.visibilityState === "hidden") {
      hiddenAt ??= Date.now();
      return;
    }
    const hiddenMs = hiddenAt === null ? 0 : Date.now() - hiddenAt;
    hiddenAt = null;
    // The user is back: a pending backoff should not make them wait.
    if (retryTimer !== undefined) {
      retryNow();
      return;
    }
    if (source === null || heartbeatTimeoutMs === 0) return;
    const silentMs = Date.now() - lastMessageAt;
    // Timers of hidden tabs are throttled or frozen, so the watchdog may not have had its chance; without
    // visible heartbeats a long hide plus silence is the only sign of a socket the OS has killed.
    if (silentMs >= heartbeatTimeoutMs && (watching() || hiddenMs >= heartbeatTimeoutMs)) lose(true);
  }

  const hasDocument = typeof document !== "undefined";
  const hasWindow = typeof window !== "undefined";
  if (hasDocument) {
    if (document.visibilityState === "hidden") hiddenAt = Date.now();
    document.addEventListener("visibilitychange", onVisibilityChange);
  }
  if (hasWindow) window.addEventListener("online", retryNow);
  open();

  return {
    close(): void {
      if (closed) return;
      closed = true;
      clearTimeout(retryTimer);
      retryTimer = undefined;
      if (hasDocument) document.removeEventListener("visibilitychange", onVisibilityChange);
      if (hasWindow) window.removeEventListener("online", retryNow);
      lose(false);
    },
    get lastEventId(): string | null {
      return lastEventId;
    },
    get connected(): boolean {
      return connected;
    },
  };
}

function realtimeEvent(name: string, detail: unknown, id: string, scope: BrowserScope): CustomEvent {
  const event = new CustomEvent(name, { detail });
  Object.defineProperties(event, {
    id: { value: id, enumerable: true },
    scope: { value: scope, enumerable: true },
  });
  return event;
}

function parseJson(text: unknown): unknown {
  if (typeof text !== "string") return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
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
