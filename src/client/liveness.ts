/**
 * The signs that a stream is alive or should be retried at once, for the transport: the heartbeat
 * watchdog, page visibility and the browser's `online` event.
 *
 * @module
 */

/** A pending `setTimeout`, or none. */
export type Timer = ReturnType<typeof setTimeout> | undefined;

/** Where the watched stream stands: no `EventSource`, waiting for `connected`, or connected. */
export type StreamState = "none" | "connecting" | "connected";

/** The handle {@link createWatchdog} returns. */
export interface Watchdog {
  /** A new stream: no heartbeat seen yet, silence counted from now, timer armed. */
  restart(): void;
  /** Any frame (or the stream's `open`): silence counts from now. */
  heard(): void;
  /** A heartbeat (`event: ping`): from the first one on a stream, silence after `connected` counts too. */
  ping(): void;
  /** (Re)starts the timer for `delayMs` (default: the timeout) if silence counts now; else stops it. */
  arm(delayMs?: number): void;
  /** Cancels the pending check. */
  stop(): void;
  /**
   * Whether the stream should be presumed dead now that the page is visible again after `hiddenMs`
   * hidden: timers of hidden tabs are throttled or frozen, so the timer may not have had its chance.
   */
  deadAfterHidden(hiddenMs: number): boolean;
}

/**
 * Calls `onSilence` once `timeoutMs` pass without a frame while silence counts: always before
 * `connected` (the wait for it is bounded), after it only once the stream has shown a heartbeat (a server
 * whose heartbeats are comment lines, which `EventSource` never shows, is not mistaken for a dead one).
 * `timeoutMs` `0` turns it all off.
 */
export function createWatchdog(timeoutMs: number, state: () => StreamState, onSilence: () => void): Watchdog {
  let lastMessageAt = Date.now();
  let heartbeatsVisible = false;
  let timer: Timer;
  const silentMs = (): number => Date.now() - lastMessageAt;
  const watching = (): boolean => {
    const now = state();
    return timeoutMs > 0 && now !== "none" && (now === "connecting" || heartbeatsVisible);
  };
  const heard = (): void => {
    lastMessageAt = Date.now();
  };
  const stop = (): void => {
    clearTimeout(timer);
    timer = undefined;
  };
  const arm = (delayMs = timeoutMs): void => {
    stop();
    if (watching()) timer = setTimeout(check, delayMs);
  };
  function check(): void {
    timer = undefined;
    if (!watching()) return;
    const silent = silentMs();
    if (silent >= timeoutMs) onSilence();
    else arm(timeoutMs - silent);
  }
  return {
    restart() {
      heartbeatsVisible = false;
      heard();
      arm();
    },
    heard,
    ping() {
      heard();
      if (heartbeatsVisible) return;
      heartbeatsVisible = true;
      arm();
    },
    arm,
    stop,
    deadAfterHidden(hiddenMs) {
      if (state() === "none" || timeoutMs === 0 || silentMs() < timeoutMs) return false;
      // Without visible heartbeats a long hide plus silence is the only sign of a socket the OS has killed.
      return watching() || hiddenMs >= timeoutMs;
    },
  };
}

/**
 * Calls `onVisible` with how long the page was hidden (ms) whenever it becomes visible, and `onOnline`
 * when the browser is back online. Returns the function that removes both listeners.
 */
export function watchPage(onVisible: (hiddenMs: number) => void, onOnline: () => void): () => void {
  const hasDocument = typeof document !== "undefined";
  const hasWindow = typeof window !== "undefined";
  let hiddenAt: number | null = null;
  const onVisibilityChange = (): void => {
    if (document.visibilityState === "hidden") {
      hiddenAt ??= Date.now();
      return;
    }
    const hiddenMs = hiddenAt === null ? 0 : Date.now() - hiddenAt;
    hiddenAt = null;
    onVisible(hiddenMs);
  };
  if (hasDocument) {
    if (document.visibilityState === "hidden") hiddenAt = Date.now();
    document.addEventListener("visibilitychange", onVisibilityChange);
  }
  if (hasWindow) window.addEventListener("online", onOnline);
  return () => {
    if (hasDocument) document.removeEventListener("visibilitychange", onVisibilityChange);
    if (hasWindow) window.removeEventListener("online", onOnline);
  };
}
