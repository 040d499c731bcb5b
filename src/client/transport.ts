/**
 * One realtime stream's life: the `EventSource`, our own reconnect (capped exponential backoff, full
 * jitter), the heartbeat watchdog, page visibility and `online`, and the cursor sent on reconnect.
 *
 * It knows nothing of DOM event names: it reports frames to a {@link TransportEvents}.
 *
 * @module
 */

import { createWatchdog, type StreamState, type Timer, watchPage } from "./liveness.js";

/** Settings of {@link openTransport}, already validated by `connect()`. */
export interface TransportOptions {
  /** The stream's URL, absolute or relative to the page. */
  url: string;
  /** `EventSource` `withCredentials`. */
  withCredentials: boolean;
  /** Milliseconds of silence after which the stream is presumed dead; `0`: never. */
  heartbeatTimeoutMs: number;
  /** Milliseconds of the first reconnect delay's ceiling (> 0). */
  retryBaseMs: number;
  /** Milliseconds the reconnect delay's ceiling never exceeds (>= `retryBaseMs`). */
  retryMaxMs: number;
  /** The opaque cursor of the first attempt, sent as `?lastEventId=`; `null`: start live. */
  cursor: string | null;
}

/**
 * What the transport reports upward. Frames of a replaced or closed `EventSource` are never reported.
 * `data` is the frame's raw `data:` text, unparsed.
 */
export interface TransportEvents {
  /** The server sent `connected` after a disconnected state (repeats on one stream are not reported). */
  connected(data: string): void;
  /**
   * An application frame; `id` is its `id:` line, `null` when it had none or an empty one (`EventSource`
   * only shows the last ID so far, so a line repeating the previous frame's reads as none too).
   */
  message(data: string, id: string | null): void;
  /** An `event: reset` frame; `id` is its `id:` line, `null` when empty (storage off: no cursor). */
  reset(data: string, id: string | null): void;
  /** A connected stream was lost or closed (a refused attempt while disconnected is not reported). */
  disconnected(): void;
}

/** The handle {@link openTransport} returns. */
export interface Transport {
  /**
   * The opaque cursor the next attempt sends as `?lastEventId=`; `null` sends none. The transport never
   * moves it by itself: its owner does, from the frames it accepts.
   */
  cursor: string | null;
  /** Whether the stream is open and the server has sent `connected`. */
  readonly connected: boolean;
  /** Ends the stream for good (reports `disconnected` if connected); calling it again does nothing. */
  close(): void;
}

/**
 * Opens the stream at once and keeps it open until {@link Transport.close}: every loss (network error,
 * non-200 answer, missed heartbeats) is followed by a new `EventSource` after a backoff.
 */
export function openTransport(options: TransportOptions, events: TransportEvents): Transport {
  let detach: (() => void) | null = null;
  let connected = false;
  const state = (): StreamState => (detach === null ? "none" : connected ? "connected" : "connecting");
  const watchdog = createWatchdog(options.heartbeatTimeoutMs, state, () => lose(false));
  const retry = createRetry(options, open);

  function open(): void {
    const url = streamUrl(options.url, transport.cursor);
    detach = openSource(url, options.withCredentials, watchdog.heard, {
      open() {},
      ping: watchdog.ping,
      error: () => lose(false),
      connected(event) {
        retry.succeeded();
        const changed = !connected;
        connected = true;
        watchdog.arm();
        if (changed) events.connected(event.data);
      },
      reset: (event) => events.reset(event.data, event.lastEventId || null),
      message: (event, idLine) => events.message(event.data, idLine),
    });
    watchdog.restart();
  }

  /**
   * Every loss goes through here, including the ones native EventSource would retry by itself: its retry
   * has no backoff or jitter, resumes only with the header of its own instance, and stops for good on a
   * non-200 answer; one path of our own keeps the cursor and the backoff in one place.
   */
  function lose(immediately: boolean): void {
    detach?.();
    detach = null;
    watchdog.stop();
    if (connected) {
      connected = false;
      events.disconnected();
    }
    retry.schedule(immediately);
  }

  const unwatchPage = watchPage((hiddenMs) => {
    // The user is back: a pending backoff should not make them wait.
    if (!retry.now() && watchdog.deadAfterHidden(hiddenMs)) lose(true);
  }, retry.now);
  const transport: Transport = {
    cursor: options.cursor,
    get connected() {
      return connected;
    },
    close() {
      if (retry.stopped()) return;
      retry.stop();
      unwatchPage();
      lose(false);
    },
  };
  open();
  return transport;
}

/** The reconnect schedule {@link createRetry} returns. */
interface Retry {
  /** Calls `open` after the next backoff delay, or at once with `immediately`; nothing once stopped. */
  schedule(immediately: boolean): void;
  /** The server answered: the next loss starts from the base delay again. */
  succeeded(): void;
  /** Runs a pending retry at once; whether one was pending. */
  now(): boolean;
  /** Cancels the pending retry and every later one. */
  stop(): void;
  stopped(): boolean;
}

/** Reconnect attempts beyond this many no longer double the ceiling (which is capped long before). */
const MAX_ATTEMPT = 30;

/**
 * Capped exponential backoff with full jitter: the ceiling starts at `retryBaseMs`, doubles with each
 * attempt up to `retryMaxMs`, and each delay is drawn uniformly below it.
 */
function createRetry(options: TransportOptions, open: () => void): Retry {
  let attempt = 0;
  let timer: Timer;
  let stopped = false;
  const run = (): void => {
    timer = undefined;
    open();
  };
  return {
    schedule(immediately) {
      if (stopped) return;
      if (immediately) {
        run();
        return;
      }
      const ceiling = Math.min(options.retryMaxMs, options.retryBaseMs * 2 ** attempt);
      attempt = Math.min(attempt + 1, MAX_ATTEMPT);
      timer = setTimeout(run, Math.random() * ceiling);
    },
    succeeded() {
      attempt = 0;
    },
    now() {
      if (timer === undefined || stopped) return false;
      clearTimeout(timer);
      run();
      return true;
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
      timer = undefined;
    },
    stopped: () => stopped,
  };
}

/** `url` with `?lastEventId=<cursor>` (resolved against the page), or `url` itself without a cursor. */
function streamUrl(url: string, cursor: string | null): string {
  if (cursor === null) return url;
  const resolved = new URL(url, typeof location === "undefined" ? undefined : location.href);
  resolved.searchParams.set("lastEventId", cursor);
  return resolved.href;
}

/** One handler per SSE event name; `idLine` is the frame's `id:` line, `null` when it had none or "". */
type SourceHandlers = Record<
  "open" | "connected" | "message" | "reset" | "ping" | "error",
  (event: MessageEvent, idLine: string | null) => void
>;

/**
 * Opens one `EventSource` and routes its events to `handlers`, calling `heard` before each one but
 * `error`, until the returned function closes it; from then on nothing more is routed, not even a
 * listener call already queued behind the close.
 */
function openSource(
  url: string,
  withCredentials: boolean,
  heard: () => void,
  handlers: SourceHandlers,
): () => void {
  const es = new EventSource(url, { withCredentials });
  let active = true;
  // `lastEventId` carries over frames without an `id:` line, so only a change tells that a frame had one.
  let seenId = "";
  const listeners = Object.entries(handlers).map(([name, handler]): [string, (event: Event) => void] => [
    name,
    (event) => {
      if (!active) return;
      if (name !== "error") heard();
      const { lastEventId = seenId } = event as MessageEvent;
      handler(event as MessageEvent, lastEventId !== seenId ? lastEventId || null : null);
      seenId = lastEventId;
    },
  ]);
  for (const [name, listener] of listeners) es.addEventListener(name, listener);
  return () => {
    active = false;
    for (const [name, listener] of listeners) es.removeEventListener(name, listener);
    es.close();
  };
}
