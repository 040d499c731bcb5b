import type { ActivityLog } from "./activity.js";
import type { Connection } from "./connection.js";
import { cursorToken, identityTag } from "./cursor.js";
import type { Hooks } from "./hooks.js";
import { eventFrame } from "./sse.js";
import type { Counters } from "./stats.js";
import type { Logger, RealtimeEvent } from "./types.js";

/** What routing needs of an event's row: its tag (for cursors) and the transaction that wrote it. */
export interface RowMeta {
  tag: string;
  txid: string;
}

/** A `subscribe` handler: gets every event of every scope, system included. */
export type Subscriber = (event: RealtimeEvent) => void;

/**
 * Decides which connection may see which event and hands each its frame:
 * `global` → every connection, `user` → that user's connections, `system` → subscribers only.
 * Without `beforeSend` an event is framed once per identity (the cursor names it) and the same bytes go
 * to every connection of that identity.
 */
export class Router {
  /** Connections by user id; anonymous ones under `null`. */
  private readonly byUser = new Map<string | null, Set<Connection>>();
  private readonly subscribers = new Set<Subscriber>();
  private count = 0;

  constructor(
    private readonly logger: Logger,
    private readonly hooks: Hooks,
    private readonly counters: Counters,
    /** Where deliveries of stored events are recorded; `null` without storage or with `activity: false`. */
    private readonly activity: ActivityLog | null,
  ) {}

  get connectionCount(): number {
    return this.count;
  }

  /** Open streams by kind, for `stats()`: anonymous ones and distinct signed-in users. */
  connectionSummary(): { total: number; anonymous: number; users: number } {
    const anonymous = this.byUser.get(null)?.size ?? 0;
    return { total: this.count, anonymous, users: this.byUser.size - (anonymous > 0 ? 1 : 0) };
  }

  /** How many streams one user has open. */
  userConnectionCount(userId: string): number {
    return this.byUser.get(userId)?.size ?? 0;
  }

  *connections(): IterableIterator<Connection> {
    for (const set of this.byUser.values()) yield* set;
  }

  /** The open streams of one user. */
  connectionsOf(userId: string): Connection[] {
    return [...(this.byUser.get(userId) ?? [])];
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
   * `row` is what the stored row says; `null` without storage, where the id is the cursor.
   */
  route(event: RealtimeEvent, row: RowMeta | null): void {
    deepFreeze(event);
    this.counters.received++;
    for (const subscriber of this.subscribers) {
      try {
        const result: unknown = subscriber(event);
        // An async handler's rejection is its own failure, like a throw: logged, never fatal.
        if (isThenable(result)) result.then(undefined, (error) => this.handlerFailed(error, event));
      } catch (error) {
        this.handlerFailed(error, event);
      }
    }
    let sent = 0;
    if (event.scope === "user") {
      const set = event.userId === null ? undefined : this.byUser.get(event.userId);
      if (set) sent = this.send(event, row, event.userId, set);
    } else if (event.scope === "global") {
      for (const [userId, set] of this.byUser) sent += this.send(event, row, userId, set);
    }
    if (row) this.activity?.dispatched(event.id, sent);
  }

  /** Writes the event to one identity's connections; returns to how many. */
  private send(
    event: RealtimeEvent,
    row: RowMeta | null,
    userId: string | null,
    recipients: Set<Connection>,
  ): number {
    const txid = row?.txid ?? null;
    let sent = 0;
    if (!this.hooks.perConnection) {
      // Every connection of the group shares its identity, so the first one's tag serves all.
      const tag = recipients.values().next().value?.identityTag ?? identityTag(userId);
      const frame = eventFrame(event, cursorOf(event.id, row?.tag ?? null, tag));
      for (const connection of recipients) if (connection.deliver(frame, txid, event.id)) sent++;
    } else {
      for (const connection of recipients) {
        const frame = this.frameFor(event, row?.tag ?? null, connection);
        if (frame && connection.deliver(frame, txid, event.id)) sent++;
      }
    }
    this.counters.sent += sent;
    if (row && sent > 0) this.activity?.sent(event.id, userId, sent, false);
    return sent;
  }

  /** A live event held behind a replay went out to one stream of `userId` after it. */
  released(eventId: string, userId: string | null): void {
    this.counters.sent++;
    this.activity?.sent(eventId, userId, 1, false);
  }

  private handlerFailed(error: unknown, event: RealtimeEvent): void {
    this.logger.error({ err: error, eventId: event.id }, "pgrealtime: a subscribe handler threw");
  }

  /** The frame of one event for one connection (through `beforeSend`), or `null` to skip it there. */
  frameFor(event: RealtimeEvent, rowTag: string | null, connection: Connection): Uint8Array | null {
    const sent = this.hooks.beforeSend(event, { userId: connection.userId });
    return sent && eventFrame(sent, cursorOf(event.id, rowTag, connection.identityTag));
  }
}

/** The `id:` line of an event: a cursor token with storage, the plain id without. */
function cursorOf(id: string, rowTag: string | null, identity: string): string {
  return rowTag === null ? id : cursorToken(id, rowTag, identity);
}

/** Whether a connection of `userId` may receive `event`: the one routing rule, live and on replay. */
export function mayReceive(event: RealtimeEvent, userId: string | null): boolean {
  return (
    event.scope === "global" || (event.scope === "user" && event.userId !== null && event.userId === userId)
  );
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
