import { randomUUID } from "node:crypto";
import type { Pool } from "pg";
import { backoffDelay } from "./listener.js";
import { receive } from "./router.js";
import type { Cursor, Store } from "./store.js";
import type { Logger, RealtimeEvent } from "./types.js";

/** Rows per catch-up query. */
const PAGE_SIZE = 500;
/** Ids remembered to drop duplicates between catch-up and live notifications. */
const RECENT_IDS = 10_000;
/** A sync whose notification never comes (the LISTEN connection was down) gives up after this, once idle. */
const SYNC_TIMEOUT_MS = 30_000;
/** Notifications of this prefix mark a point in the notification stream; never events. */
const SYNC_PREFIX = '{"sync":';

export interface ReceiverOptions {
  store: Store;
  pool: Pool;
  storage: boolean;
  logger: Logger;
  onReceive: ((event: RealtimeEvent) => RealtimeEvent | null | Promise<RealtimeEvent | null>) | undefined;
  /** Hands an accepted event to routing. */
  route(event: RealtimeEvent): void;
  /** Tells every connection and subscriber that events were lost and cannot be recovered. */
  reset(reason: string): void;
}

type Item = { payload: string } | { attempt: Promise<boolean> };

/**
 * Everything that reaches this process, in order: live notifications in commit order and, after each
 * re-LISTEN, a catch-up from the table of whatever committed while the connection was down. Each event
 * passes here once (ids already routed are dropped), then `onReceive`, then routing.
 *
 * Where the process stands is a {@link Cursor}: the last live event (its row holds the snapshot it was
 * inserted under) or the snapshot taken at the last (re)start. Every event committed before it was
 * routed; the store knows which rows may have committed after it.
 */
export class Receiver {
  private readonly inbox: Item[] = [];
  private draining = false;
  private closed = false;
  private readonly recent = new Set<string>();
  private started = false;
  private lastLiveId: string | null = null;
  private cursor: Cursor | null = null;
  private retryTimer: NodeJS.Timeout | undefined;
  private wake: (() => void) | undefined;
  private readonly syncs = new Map<string, () => void>();

  constructor(private readonly options: ReceiverOptions) {}

  /** A notification payload, as the LISTEN connection received it. */
  notification(payload: string): void {
    this.enqueue({ payload });
  }

  /** A LISTEN attempt began; `attempt` resolves to whether it ended up listening. */
  attempt(attempt: Promise<boolean>): void {
    this.enqueue({ attempt });
  }

  /**
   * Resolves once every notification committed before this call has been routed here: it NOTIFYs a
   * marker and waits for it to come round, behind them, in commit order. Gives up after 30 s (a
   * LISTEN outage swallows the marker; catch-up covers the events).
   */
  sync(): Promise<void> {
    const nonce = randomUUID();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.syncs.delete(nonce);
        resolve();
      };
      // Still working through notifications: the marker may be behind them; wait on.
      const expire = () => {
        if (this.draining && !this.closed) timer = setTimeout(expire, SYNC_TIMEOUT_MS).unref();
        else done();
      };
      let timer = setTimeout(expire, SYNC_TIMEOUT_MS).unref();
      this.syncs.set(nonce, done);
      this.options.store.notify(this.options.pool, `${SYNC_PREFIX}"${nonce}"}`).catch(done);
    });
  }

  close(): void {
    this.closed = true;
    this.inbox.length = 0;
    clearTimeout(this.retryTimer);
    this.wake?.();
    for (const done of [...this.syncs.values()]) done();
  }

  private enqueue(item: Item): void {
    if (this.closed) return;
    this.inbox.push(item);
    if (!this.draining) void this.drain();
  }

  private async drain(): Promise<void> {
    this.draining = true;
    for (let item = this.inbox.shift(); item !== undefined && !this.closed; item = this.inbox.shift()) {
      try {
        if ("payload" in item) await this.live(item.payload);
        else if (await item.attempt) await this.listening();
      } catch (error) {
        this.options.logger.error(
          { err: error },
          "pgrealtime: an event could not be received; dropped in this process",
        );
      }
    }
    this.draining = false;
  }

  private async live(payload: string): Promise<void> {
    if (payload.startsWith(SYNC_PREFIX)) {
      // Markers of other processes are theirs to wait for.
      this.syncs.get((JSON.parse(payload) as { sync: string }).sync)?.();
      return;
    }
    let event = this.parse(payload);
    // Too large for NOTIFY: only the id travelled; the row has the rest.
    if (event && event.type === undefined) event = await this.options.store.get(this.options.pool, event.id);
    if (!event) return;
    if (this.options.storage) this.lastLiveId = event.id;
    await this.accept(event);
  }

  /** Runs after every successful LISTEN: at the first, note where we start; later, catch up. */
  private async listening(): Promise<void> {
    const first = !this.started;
    this.started = true;
    if (!this.options.storage) {
      if (!first) this.options.reset("listener-reconnected");
      return;
    }
    for (let attempt = 0; !this.closed; attempt++) {
      try {
        if (first) this.cursor = await this.options.store.currentCursor(this.options.pool);
        else await this.catchUp();
        return;
      } catch (error) {
        // A newer attempt is queued when the connection dropped again; it will catch up instead.
        if (this.inbox.some((item) => "attempt" in item)) return;
        this.options.logger.warn({ err: error, attempt }, "pgrealtime: catch-up failed; retrying");
        await this.sleep(backoffDelay(attempt));
      }
    }
  }

  private async catchUp(): Promise<void> {
    const { store, pool } = this.options;
    let from = this.lastLiveId === null ? this.cursor : await store.cursorAt(pool, BigInt(this.lastLiveId));
    if (!from && this.lastLiveId !== null) {
      // The last event's row (and every row below it) was deleted meanwhile: all that is left is newer.
      from = { id: this.lastLiveId, snapshot: null, txid: null };
    }
    if (!from) {
      this.options.reset("listener-reconnected");
      this.cursor = await store.currentCursor(pool);
      this.lastLiveId = null;
      return;
    }
    // One snapshot for every page, and it becomes the next cursor: what it saw is now delivered, what
    // it did not see commits later and arrives live.
    const client = await pool.connect();
    try {
      await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
      const next = await store.currentCursor(client);
      let after = "-1";
      for (;;) {
        const page = await store.backlogPage(client, from, "all", after, PAGE_SIZE);
        for (const event of page) await this.accept(event);
        const last = page.at(-1);
        if (!last || page.length < PAGE_SIZE) break;
        after = last.id;
      }
      await client.query("COMMIT");
      this.cursor = next;
      this.lastLiveId = null;
    } finally {
      client.release();
    }
  }

  private async accept(event: RealtimeEvent): Promise<void> {
    if (this.options.storage) {
      if (this.recent.has(event.id)) return;
      this.recent.add(event.id);
      if (this.recent.size > RECENT_IDS) this.recent.delete(this.recent.values().next().value as string);
    }
    const { onReceive, logger } = this.options;
    const accepted = onReceive ? await receive(event, onReceive, logger) : event;
    if (accepted) this.options.route(accepted);
  }

  private parse(payload: string): RealtimeEvent | null {
    try {
      const raw = JSON.parse(payload) as Record<string, unknown>;
      if (typeof raw.id !== "string") throw new Error("no id");
      return {
        id: raw.id,
        type: raw.type as string,
        scope: raw.scope as RealtimeEvent["scope"],
        userId: (raw.userId as string | null) ?? null,
        detail: raw.detail as RealtimeEvent["detail"],
        createdAt: new Date(raw.createdAt as string),
      };
    } catch {
      this.options.logger.warn(
        { payload: payload.slice(0, 200) },
        "pgrealtime: ignored a malformed notification on the channel",
      );
      return null;
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve;
      this.retryTimer = setTimeout(resolve, ms);
    });
  }
}
