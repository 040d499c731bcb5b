// Watching a realtime instance from a test: what it logged, what its subscribers got, and its LISTEN
// connection's "error" and "reconnect" events, each with a deadline instead of a fixed sleep.
import { onTestFinished } from "vitest";
import type { Logger, Realtime, RealtimeEvent } from "../../src/index.js";

/** Longest wait for a reconnect: the listener's backoff is capped at 5 s, plus connect and probe. */
export const RECONNECT_TIMEOUT_MS = 12_000;

export type RecordingLogger = Logger & { errors: unknown[][]; warns: unknown[][]; infos: unknown[][] };

/** A logger that keeps what it is given (debug aside), so tests can assert on what was reported. */
export function recordingLogger(): RecordingLogger {
  const errors: unknown[][] = [];
  const warns: unknown[][] = [];
  const infos: unknown[][] = [];
  return {
    errors,
    warns,
    infos,
    debug() {},
    info: (...args: unknown[]) => infos.push(args),
    warn: (...args: unknown[]) => warns.push(args),
    error: (...args: unknown[]) => errors.push(args),
  };
}

/** Whether `logger` logged `error` as an error (as `{ err }`, the library's convention). */
export function logged(logger: { errors: unknown[][] }, error: unknown): boolean {
  return logger.errors.some((args) => (args[0] as { err?: unknown } | undefined)?.err === error);
}

/** Runs `fn` when the current test ends, passed or failed; errors are reported, not thrown. */
export function cleanup(what: string, fn: () => unknown): void {
  onTestFinished(async () => {
    try {
      await fn();
    } catch (error) {
      console.error(`cleanup (${what}) failed:`, error);
    }
  });
}

/** `promise`, or a rejection naming `what` after `timeoutMs`; never an unhandled rejection by itself. */
export function within<T>(promise: Promise<T>, timeoutMs: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no ${what()} within ${timeoutMs} ms`)), timeoutMs);
  });
  const result = Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
  result.catch(() => {});
  return result;
}

/** Every event id a `subscribe` handler sees, in arrival order, with a way to wait for one. */
export function collect(realtime: Realtime) {
  const ids: string[] = [];
  const waiters = new Set<() => void>();
  realtime.subscribe((event: RealtimeEvent) => {
    ids.push(event.id);
    for (const waiter of [...waiters]) waiter();
  });
  return {
    ids,
    until(id: string, timeoutMs = RECONNECT_TIMEOUT_MS): Promise<void> {
      if (ids.includes(id)) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`event ${id} did not reach the subscriber within ${timeoutMs} ms; got ${ids}`));
        }, timeoutMs);
        const check = () => {
          if (!ids.includes(id)) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        };
        waiters.add(check);
      });
    },
  };
}

/** Every failure the LISTEN connection reported, and a wait for the time of the first. */
export function watchErrors(realtime: Realtime) {
  const errors: unknown[] = [];
  let first!: (at: number) => void;
  const firstAt = new Promise<number>((resolve) => (first = resolve));
  realtime.on("error", (error) => {
    errors.push(error);
    first(Date.now());
  });
  return {
    errors,
    firstAt: (timeoutMs = 5_000) => within(firstAt, timeoutMs, () => `"error" from the LISTEN connection`),
  };
}

/** Starts waiting for the next "reconnect" now; await the result later. */
export function nextReconnect(realtime: Realtime, timeoutMs = RECONNECT_TIMEOUT_MS): Promise<void> {
  let off = () => {};
  const reconnected = new Promise<void>((resolve) => {
    off = realtime.on("reconnect", resolve);
  }).finally(() => off());
  return within(reconnected, timeoutMs, () => `"reconnect" (state ${realtime.listenerState})`);
}

/** The warn-level messages logged so far (the second argument, by the library's convention). */
export function warnMessages(logger: RecordingLogger): string[] {
  return logger.warns.map((args) => String(args[1]));
}

/**
 * Whether a warning or an error was logged about the event `eventId`: as `{ eventId }` (the library's
 * convention) or named in the message text.
 */
export function loggedAbout(logger: { warns: unknown[][]; errors: unknown[][] }, eventId: string): boolean {
  const named = new RegExp(`\\b${eventId.replace(/[^0-9A-Za-z-]/g, "")}\\b`);
  return [...logger.warns, ...logger.errors].some((args) =>
    args.some((arg) =>
      typeof arg === "string"
        ? named.test(arg)
        : String((arg as { eventId?: unknown } | null)?.eventId) === eventId,
    ),
  );
}
