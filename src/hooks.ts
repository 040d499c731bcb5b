// The application's hooks, run so that they cannot break the promise: each result is copied once, then
// checked and used from the copy (a getter cannot answer one thing to the check and another to the
// writer); neither hook may move an event to another audience; a hook that does not settle in time
// drops that one event, never the events after it.
import { isPlainObject, normalizeUserId, RESERVED_TYPES, serializeObject, validateType } from "./event.js";
import { isThenable } from "./router.js";
import type { Counters } from "./stats.js";
import type { Logger, RealtimeEvent, SendContext } from "./types.js";

/** `onReceive` as the receiver calls it. */
export type OnReceive = (event: RealtimeEvent) => RealtimeEvent | null | Promise<RealtimeEvent | null>;
/** `beforeSend` as the router calls it. */
export type BeforeSend = (event: RealtimeEvent, context: SendContext) => RealtimeEvent | null;

export class Hooks {
  constructor(
    private readonly onReceive: OnReceive | undefined,
    private readonly beforeSendHook: BeforeSend | undefined,
    private readonly timeoutMs: number,
    private readonly logger: Logger,
    private readonly counters: Counters,
  ) {}

  /** Whether events are framed per connection (`beforeSend` set) rather than once for all. */
  get perConnection(): boolean {
    return this.beforeSendHook !== undefined;
  }

  /**
   * Runs `onReceive` on a copy of `event`: the event to route (the original without a hook), or `null`
   * when its type is reserved, or the hook dropped it, threw, returned something invalid or moved it to another audience, or did
   * not settle within `hookTimeoutMs`. Every such failure is logged with the event id.
   */
  async receive(event: RealtimeEvent): Promise<RealtimeEvent | null> {
    // A row written by hand (a role that may INSERT) could hold a name the client dispatches itself.
    if (RESERVED_TYPES.has(event.type)) {
      return this.dropped(event, `a stored event has the reserved type "${event.type}"; dropped`);
    }
    if (!this.onReceive) return event;
    let timer: NodeJS.Timeout | undefined;
    try {
      const result = await Promise.race([
        Promise.resolve().then(() => (this.onReceive as OnReceive)(copyEvent(event))),
        new Promise<typeof TIMED_OUT>((resolve) => {
          timer = setTimeout(() => resolve(TIMED_OUT), this.timeoutMs);
        }),
      ]);
      if (result === TIMED_OUT) {
        return this.dropped(
          event,
          `onReceive did not settle within hookTimeoutMs (${this.timeoutMs} ms); event dropped in this process`,
        );
      }
      if (result === null || result === undefined) return this.skipped();
      return this.check(event, result, "onReceive");
    } catch (error) {
      return this.dropped(event, "onReceive threw; event dropped in this process", error);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Runs `beforeSend` for one connection on its own copy: the event that connection gets (only its type
   * and detail may differ), or `null` to skip it there. A throw, a Promise or a widened result is logged
   * and skips the event for that connection only.
   */
  beforeSend(event: RealtimeEvent, context: SendContext): RealtimeEvent | null {
    if (!this.beforeSendHook) return event;
    try {
      const result: unknown = this.beforeSendHook(copyEvent(event), context);
      if (isThenable(result)) {
        throw new TypeError("beforeSend must return the event or null synchronously, not a Promise");
      }
      if (result === null || result === undefined) return this.skipped();
      return this.check(event, result, "beforeSend");
    } catch (error) {
      return this.dropped(event, "beforeSend threw; event skipped for one connection", error);
    }
  }

  /** Counts an event a hook chose to drop; gives `null`. */
  private skipped(): null {
    this.counters.dropped++;
    return null;
  }

  /** Logs why `event` goes no further, with its id (and the error, if any); gives `null`. */
  private dropped(event: RealtimeEvent, why: string, error?: unknown): null {
    this.counters.dropped++;
    this.logger.error(
      error === undefined ? { eventId: event.id } : { err: error, eventId: event.id },
      `pgrealtime: ${why}`,
    );
    return null;
  }

  /**
   * A hook's result, copied once and checked on the copy: the original id, scope and user (the audience
   * is the stored row's, live and on replay alike), a valid unreserved type and a JSON plain detail.
   * Anything else is logged and gives `null`: failing closed.
   */
  private check(original: RealtimeEvent, result: unknown, hook: string): RealtimeEvent | null {
    try {
      // structuredClone reads every getter once and keeps plain data only; functions and proxies throw.
      const copy: unknown = structuredClone(result);
      if (!isPlainObject(copy)) throw new TypeError("not an event object");
      if (copy.id !== original.id) throw new TypeError("an event with another id (ids cannot change)");
      if (copy.scope !== original.scope) throw new TypeError(`another scope (${JSON.stringify(copy.scope)})`);
      const userId = copy.userId === null || copy.userId === undefined ? null : normalizeUserId(copy.userId);
      if (userId !== original.userId)
        throw new TypeError("another userId (hooks cannot change the audience)");
      const type = validateType(copy.type);
      serializeObject(copy.detail, "detail");
      return {
        id: original.id,
        type,
        scope: original.scope,
        userId: original.userId,
        detail: copy.detail as RealtimeEvent["detail"],
        createdAt: original.createdAt,
        ...(original.replayOf === undefined ? {} : { replayOf: original.replayOf }),
      };
    } catch (error) {
      return this.dropped(original, `${hook} returned ${(error as Error).message}; event dropped`, error);
    }
  }
}

const TIMED_OUT = Symbol("timed out");

/** A deep copy, so that a hook's changes never reach another connection or the next hook call. */
export function copyEvent(event: RealtimeEvent): RealtimeEvent {
  return { ...event, detail: structuredClone(event.detail), createdAt: new Date(event.createdAt) };
}
