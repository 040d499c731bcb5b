import { backoffDelay } from "./backoff.js";
import { rowTag } from "./cursor.js";
import { EphemeralIntake } from "./ephemeral.js";
import type { Hooks } from "./hooks.js";
import type { Listener } from "./listener.js";
import type { RowMeta } from "./router.js";
import type { Snapshot } from "./snapshot.js";
import { wentBack } from "./snapshot.js";
import type { ReadResult, Store, StoredRow } from "./store.js";
import type { Logger, RealtimeEvent } from "./types.js";

type PageFrom = { since: Snapshot } | { createdSince: Date };

/** Milliseconds between back-to-back reads: bounds reads per second under load, adds at most this. */
const BUSY_READ_GAP_MS = 2;
/** Rows per read. */
const PAGE_SIZE = 500;

export interface ReceiverOptions {
  store: Store;
  storage: boolean;
  /** Authenticates storage-off payloads; `null` trusts every role that can connect. */
  secret: string | null;
  /** Milliseconds between reads when nothing wakes the receiver (rows written without a NOTIFY). */
  pollMs: number;
  logger: Logger;
  hooks: Hooks;
  /** Hands an accepted event to routing, with what its row says (`null` without storage). */
  route(event: RealtimeEvent, row: RowMeta | null): void;
  /** Events may have been lost for every connection: `history-changed`, `listener-reconnected`. */
  reset(reason: "history-changed" | "listener-reconnected"): void;
  /** `disconnectUser` reached this process. */
  disconnect(userId: string): void;
}

/**
 * Everything that reaches this process, each event once, in an order where no event comes before one
 * that committed before it was written.
 *
 * With storage on, a notification is only a wake-up: the receiver reads the table itself, each read
 * returning exactly the rows committed between the previous read's snapshot and its own, in id order
 * (an event's id is greater than the id of every event its snapshot saw). What is routed is what the
 * table holds, so forged notifications, lost ones and LISTEN outages of any rhythm change nothing but
 * latency. Each read also checks that the database still holds the history read so far.
 * With storage off, events travel in the notifications, verified by `secret` when set.
 */
export class Receiver {
  private since: Snapshot | null = null;
  /** A read whose later pages are not done yet: resumed, never read again from the start. */
  private partial: { from: PageFrom; bound: Snapshot; after: string } | null = null;
  private last: { id: string; createdMicros: string } | null = null;
  private reading = false;
  private again = false;
  private waiting: Array<() => void> = [];
  /** The waiters of a read that failed between its pages: only its completion answers them. */
  private partialWaiters: Array<() => void> = [];
  private started = false;
  private starting = false;
  private closed = false;
  private pollTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private wakeSleep: (() => void) | undefined;
  private readonly ephemeral: EphemeralIntake;
  private markReady!: () => void;
  private readonly readyPromise = new Promise<void>((resolve) => {
    this.markReady = resolve;
  });

  constructor(private readonly options: ReceiverOptions) {
    this.ephemeral = new EphemeralIntake({ ...options, isClosed: () => this.closed });
  }

  /**
   * Resolves once the receiver knows where it starts (the first LISTEN and, with storage, the snapshot
   * it reads from). A stream admitted earlier could miss what committed before that point.
   */
  ready(): Promise<void> {
    return this.readyPromise;
  }

  /** A notification payload, as the LISTEN connection received it. */
  notification(payload: string): void {
    if (this.closed) return;
    if (this.options.storage) {
      this.wake();
      return;
    }
    this.ephemeral.notification(payload);
  }

  /** A LISTEN attempt began; `listening` resolves to whether it ended up listening. */
  attempt(listening: Promise<boolean>): void {
    void listening.then((ok) => (ok ? this.listening() : undefined));
  }

  /**
   * Resolves once every event committed before the call has been routed here (with storage off, at
   * once: nothing is replayed there). Waits while the database cannot be read.
   */
  sync(): Promise<void> {
    if (!this.options.storage || this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      this.wake();
    });
  }

  close(): void {
    this.closed = true;
    this.markReady();
    clearInterval(this.pollTimer);
    clearTimeout(this.retryTimer);
    this.wakeSleep?.();
    for (const resolve of [...this.waiting.splice(0), ...this.partialWaiters.splice(0)]) resolve();
  }

  private async listening(): Promise<void> {
    const first = !this.started;
    this.started = true;
    if (first) this.ephemeral.started();
    if (!this.options.storage) {
      if (!first) this.options.reset("listener-reconnected");
      this.markReady();
      return;
    }
    if (this.since !== null) {
      this.wake(); // catch up with whatever committed while the connection was down
      return;
    }
    // A LISTEN that came back while the first snapshot is still being read: that start goes on alone.
    if (this.starting) return;
    this.starting = true;
    for (let attempt = 0; !this.closed && this.since === null; attempt++) {
      try {
        this.since = await this.options.store.currentSnapshot();
      } catch (error) {
        this.options.logger.warn(
          { err: error, attempt },
          "pgrealtime: could not read the current snapshot; retrying",
        );
        await this.sleep(backoffDelay(attempt));
      }
    }
    if (this.closed) return;
    this.pollTimer = setInterval(() => this.wake(), this.options.pollMs);
    this.pollTimer.unref();
    this.markReady();
    this.wake();
  }

  private wake(): void {
    if (this.closed || this.since === null) return;
    if (this.reading) {
      this.again = true;
      return;
    }
    void this.readLoop();
  }

  private async readLoop(): Promise<void> {
    this.reading = true;
    for (let failures = 0; !this.closed; ) {
      this.again = false;
      // Finishing a read that failed between pages serves only its own waiters: its snapshot is older
      // than any waiter that came since.
      const waiters = this.partial ? this.partialWaiters.splice(0) : this.waiting.splice(0);
      try {
        await this.readOnce();
        failures = 0;
        for (const resolve of waiters) resolve();
      } catch (error) {
        if (this.partial) this.partialWaiters.unshift(...waiters);
        else this.waiting.unshift(...waiters);
        this.options.logger.warn(
          { err: error, attempt: failures },
          "pgrealtime: reading new events failed; retrying",
        );
        await this.sleep(backoffDelay(failures++));
        this.again = true;
      }
      if (!this.again) break;
      // Woken while reading: under load, let a few more commits gather so that one read serves them all
      // (an idle receiver reads at once).
      await this.sleep(BUSY_READ_GAP_MS);
    }
    this.reading = false;
  }

  private async readOnce(): Promise<void> {
    const since = this.since as Snapshot;
    if (this.partial) {
      await this.pages(this.partial.from, this.partial.bound, this.partial.after);
      this.since = this.partial.bound;
      this.partial = null;
      this.again = true;
      return;
    }
    const result = await this.options.store.readSince(since, this.last?.id ?? null, PAGE_SIZE);
    if (this.historyChanged(since, result)) {
      await this.restart(result);
      return;
    }
    for (const control of result.controls) this.options.disconnect(control.userId);
    await this.deliver(result.rows);
    if (result.rows.length === PAGE_SIZE) {
      const after = (result.rows.at(-1) as StoredRow).event.id;
      this.partial = { from: { since }, bound: result.snapshot, after };
      await this.pages({ since }, result.snapshot, this.partial.after);
      this.partial = null;
    }
    this.since = result.snapshot;
  }

  /**
   * Whether the database lost history this process read: its transaction counter went back, or the
   * last row read is gone (and not by pruning) or is another row now. Restoring a backup, or failing
   * over to a replica that had not received every commit, does that.
   */
  private historyChanged(since: Snapshot, result: ReadResult): boolean {
    if (wentBack(since, result.snapshot)) return true;
    const last = this.last;
    if (last === null) return false;
    if (result.lastMicros === null) return result.prunedThrough < BigInt(last.id);
    return result.lastMicros !== last.createdMicros;
  }

  /** After a history change: every stream resets, then the rows written since the server started go out. */
  private async restart(result: ReadResult): Promise<void> {
    this.options.logger.warn(
      { lastEventId: this.last?.id, serverStartedAt: result.serverStartedAt },
      "pgrealtime: the database no longer holds the events this process read (restored from a backup, or failed over to a replica that lacked them); told every client to reset",
    );
    this.last = null;
    this.options.reset("history-changed");
    const from = { createdSince: result.serverStartedAt };
    this.partial = { from, bound: result.snapshot, after: "-1" };
    await this.pages(from, result.snapshot, "-1");
    this.partial = null;
    this.since = result.snapshot;
  }

  /** Reads and delivers the later pages of one read, bounded by its snapshot. */
  private async pages(from: PageFrom, bound: Snapshot, after: string): Promise<void> {
    for await (const page of this.options.store.backlog(from, bound, "all", after, PAGE_SIZE)) {
      await this.deliver(page);
    }
  }

  /** Runs `onReceive` on a page at once and routes the results in order. */
  private async deliver(rows: StoredRow[]): Promise<void> {
    const accepted = rows.map((row) => this.options.hooks.receive(row.event));
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i] as StoredRow;
      const event = await accepted[i];
      this.last = { id: row.event.id, createdMicros: row.createdMicros };
      if (this.partial) this.partial.after = row.event.id;
      if (event && !this.closed)
        this.options.route(event, { tag: rowTag(row.createdMicros), txid: row.txid });
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wakeSleep = resolve;
      this.retryTimer = setTimeout(resolve, ms);
    });
  }
}

/**
 * Waits at most `ms` until this process receives: the LISTEN connection up and the receiver started.
 * Resolves to whether it does.
 */
export async function receivingWithin(listener: Listener, receiver: Receiver, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  let receiving = false;
  const started = listener
    .start()
    .then(() => receiver.ready())
    .then(() => {
      receiving = true;
    });
  await Promise.race([started.catch(() => {}), timeout]);
  clearTimeout(timer);
  return receiving && listener.state === "listening";
}
