import { normalizeUserId, serializeObject, validateType } from "./publish.js";
import { type Connection, eventFrame } from "./sse.js";
import type { Logger, RealtimeEvent, SendContext } from "./types.js";

/** A `subscribe` handler: gets every event of every scope, system included. */
export type Subscriber = (event: RealtimeEvent) => void;

/** `beforeSend` as the router calls it. */
export type BeforeSend = (event: RealtimeEvent, context: SendContext) => RealtimeEvent | null;

/**
 * Decides which connection may see which event and hands each its frame:
 * `global` → every connection, `user` → that user's connections, `system` → subscribers only.
 * Without `beforeSend` an event is framed once and the same bytes go to every recipient.
 */
export class Router {
  /** Connections by user id; anonymous ones under `null`. */
  private readonly byUser = new Map<string | null, Set<Connection>>();
  private readonly subscribers = new Set<Subscriber>();
  private count = 0;

  constructor(
    private readonly logger: Logger,
    private readonly beforeSend: BeforeSend | undefined,
  ) {}

  get connectionCount(): number {
    return this.count;
  }

  /** How many streams one user has open. */
  userConnectionCount(userId: string): number {
    return this.byUser.get(userId)?.size ?? 0;
  }

  *connections(): IterableIterator<Connection> {
    for (const set of this.byUser.values()) yield* set;
  }

  add(connection: Connection): void {
    let set = this.byUser.get(connection.userId);
    if (!set) {
      set = new Set();
      this.byUser.set(connection.userId, set);
    }
    set.add(connection);
    this.count++;
  }

  /** Forgets a connection; returns false when it was already gone, so cleanup runs once. */
  delete(connection: Connection): boolean {
    const set = this.byUser.get(connection.userId);
    if (!set?.delete(connection)) return false;
    if (set.size === 0) this.byUser.delete(connection.userId);
    this.count--;
    return true;
  }

  subscribe(subscriber: Subscriber): () => void {
    this.subscribers.add(subscriber);
    return () => {
      this.subscribers.delete(subscriber);
    };
  }

  /**
   * Delivers one event to the subscribers and the connections that may see it. Subscribers share one
   * deeply frozen event, so a handler cannot change what the others, or the browsers, get.
   */
  route(event: RealtimeEvent): void {
    deepFreeze(event);
    for (const subscriber of this.subscribers) {
      try {
        const result: unknown = subscriber(event);
        // An async handler's rejection is its own failure, like a throw: logged, never fatal.
        if (isThenable(result)) result.then(undefined, (error) => this.handlerFailed(error, event));
      } catch (error) {
        this.handlerFailed(error, event);
      }
    }
    if (event.scope === "user") {
      const set = event.userId === null ? undefined : this.byUser.get(event.userId);
      if (set) this.send(event, set);
    } else if (event.scope === "global" && this.count > 0) {
      this.send(event, this.connections());
    }
  }

  private send(event: RealtimeEvent, recipients: Iterable<Connection>): void {
    if (!this.beforeSend) {
      const frame = eventFrame(event);
      for (const connection of recipients) connection.deliver(event.id, frame);
      return;
    }
    for (const connection of recipients) {
      const frame = this.frameFor(event, connection);
      if (frame) connection.deliver(event.id, frame);
    }
  }

  private handlerFailed(error: unknown, event: RealtimeEvent): void {
    this.logger.error({ err: error, eventId: event.id }, "pgrealtime: a subscribe handler threw");
  }

  /**
   * The frame of one event for one connection, through `beforeSend` on the connection's own copy;
   * `null` when the hook drops it or throws (logged: that connection skips this event only).
   */
  frameFor(event: RealtimeEvent, connection: Connection): Uint8Array | null {
    if (!this.beforeSend) return eventFrame(event);
    try {
      const changed: unknown = this.beforeSend(copyEvent(event), { userId: connection.userId });
      if (isThenable(changed)) {
        throw new TypeError("beforeSend must return the event or null synchronously, not a Promise");
      }
      if (changed === null || changed === undefined) return null;
      const checked = checkHookResult(event, changed, "beforeSend", this.logger);
      return checked ? eventFrame(checked) : null;
    } catch (error) {
      this.logger.error(
        { err: error, eventId: event.id },
        "pgrealtime: beforeSend threw; event skipped for one connection",
      );
      return null;
    }
  }
}

/** Whether a connection of `userId` may receive `event`: the one routing rule, live and on replay. */
export function mayReceive(event: RealtimeEvent, userId: string | null): boolean {
  return (
    event.scope === "global" || (event.scope === "user" && event.userId !== null && event.userId === userId)
  );
}

/**
 * What a hook (`onReceive`, `beforeSend`) returned, checked before it is routed or written: an event
 * with the original id (the id is the client's cursor), a valid type, a known scope, a user id for a
 * user event, and a JSON plain object as detail. Anything else is logged and the event dropped: failing
 * closed, never sent to everyone or written as a broken frame.
 */
export function checkHookResult(
  original: RealtimeEvent,
  result: unknown,
  hook: string,
  logger: Logger,
): RealtimeEvent | null {
  try {
    if (typeof result !== "object" || result === null || Array.isArray(result)) {
      throw new TypeError("not an event object");
    }
    const event = result as Partial<RealtimeEvent>;
    if (event.id !== original.id) throw new TypeError("an event with another id (ids cannot change)");
    validateType(event.type);
    if (event.scope !== "user" && event.scope !== "global" && event.scope !== "system") {
      throw new TypeError(`the scope ${JSON.stringify(event.scope)} (not user, global or system)`);
    }
    const userId = event.userId === null || event.userId === undefined ? null : normalizeUserId(event.userId);
    if (event.scope === "user" && userId === null) throw new TypeError("a user event without a userId");
    serializeObject(event.detail, "detail");
    return {
      id: original.id,
      type: event.type as string,
      scope: event.scope,
      userId,
      detail: event.detail as RealtimeEvent["detail"],
      createdAt: event.createdAt instanceof Date ? event.createdAt : original.createdAt,
    };
  } catch (error) {
    logger.error(
      { err: error, eventId: original.id },
      `pgrealtime: ${hook} returned ${(error as Error).message}; event dropped`,
    );
    return null;
  }
}

/**
 * Runs `onReceive` on a copy of `event` and checks what it returned ({@link checkHookResult}); a throw
 * or a bad result is logged and gives `null` (the event is dropped). The result is a copy of its own:
 * routed events are frozen, and objects of the application's stay its own.
 */
export async function receive(
  event: RealtimeEvent,
  onReceive: (event: RealtimeEvent) => RealtimeEvent | null | Promise<RealtimeEvent | null>,
  logger: Logger,
): Promise<RealtimeEvent | null> {
  let result: unknown;
  try {
    result = await onReceive(copyEvent(event));
  } catch (error) {
    logger.error(
      { err: error, eventId: event.id },
      "pgrealtime: onReceive threw; event dropped in this process",
    );
    return null;
  }
  if (result === null || result === undefined) return null;
  const checked = checkHookResult(event, result, "onReceive", logger);
  return checked && copyEvent(checked);
}

export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as { then?: unknown } | null)?.then === "function";
}

/** Freezes an event and everything in its detail (plain JSON: objects and arrays only). */
function deepFreeze(value: unknown): void {
  if (typeof value !== "object" || value === null || Object.isFrozen(value)) return;
  Object.freeze(value);
  for (const child of Object.values(value)) deepFreeze(child);
}

/** A deep copy, so that a hook's changes never reach another connection or the next hook call. */
export function copyEvent(event: RealtimeEvent): RealtimeEvent {
  return { ...event, detail: structuredClone(event.detail), createdAt: new Date(event.createdAt) };
}
