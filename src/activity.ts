// Delivery activity: who each event reached, recorded off the delivery path. Routing only adds to an
// in-memory tally (one map update per event and identity, never per connection); a timer writes the
// tally as one multi-row INSERT per interval. A slow or failing write delays and drops no delivery:
// the tally is bounded, what does not fit is counted as dropped, and a failed batch is logged and counted.
import type { History } from "./history.js";
import type { Logger } from "./types.js";

/** How often the tally is written (ms). */
export const ACTIVITY_FLUSH_MS = 1_000;
/** Entries the tally holds at most; further ones are dropped (and counted) until the next write. */
export const ACTIVITY_MAX_PENDING = 10_000;
/** At most one warning per this many ms about failing writes. */
const WARN_EVERY_MS = 60_000;

/** One row of the activity table as written. */
export interface ActivityRow {
  eventId: string;
  kind: "dispatched" | "sent" | "replayed";
  userId: string | null;
  connections: number;
  resumed: boolean;
}

/** The writer of one process's delivery activity. */
export class ActivityLog {
  written = 0;
  dropped = 0;
  failed = 0;
  private pending = new Map<string, ActivityRow>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | null = null;
  private lastWarnAt = 0;
  private closing = false;

  constructor(
    private readonly history: History,
    /** This process, as the `process` column names it. */
    private readonly processId: string,
    private readonly logger: Logger,
  ) {}

  /** A process received an event and wrote it to `connections` of its streams. */
  dispatched(eventId: string, connections: number): void {
    this.add(`d ${eventId}`, eventId, "dispatched", null, connections, false);
  }

  /** An event was written to `connections` streams of `userId` (`null`: anonymous ones). */
  sent(eventId: string, userId: string | null, connections: number, resumed: boolean): void {
    this.add(
      `s ${resumed ? "r" : "l"} ${eventId} ${userId ?? ""}`,
      eventId,
      "sent",
      userId,
      connections,
      resumed,
    );
  }

  /** Writes what is pending now (also what `close` calls); never rejects. */
  flush(): Promise<void> {
    this.flushing ??= this.write().finally(() => {
      this.flushing = null;
      // What piled up while this write was slow goes out with the next one.
      if (this.pending.size > 0) this.schedule();
    });
    return this.flushing;
  }

  /** Writes what is pending and stops the timer. */
  async close(): Promise<void> {
    this.closing = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.flushing;
    await this.flush();
  }

  private add(
    key: string,
    eventId: string,
    kind: ActivityRow["kind"],
    userId: string | null,
    connections: number,
    resumed: boolean,
  ): void {
    const entry = this.pending.get(key);
    if (entry) {
      entry.connections += connections;
      return;
    }
    if (this.pending.size >= ACTIVITY_MAX_PENDING) {
      this.dropped++;
      return;
    }
    // A `userId` of `null` is anonymous for "sent" and none for "dispatched".
    this.pending.set(key, { eventId, kind, userId, connections, resumed });
    this.schedule();
  }

  private schedule(): void {
    if (this.closing) return;
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, ACTIVITY_FLUSH_MS).unref();
  }

  private async write(): Promise<void> {
    if (this.pending.size === 0) return;
    const rows = [...this.pending.values()];
    this.pending = new Map();
    try {
      await this.history.insertActivity(rows, this.processId);
      this.written += rows.length;
    } catch (error) {
      this.failed++;
      this.dropped += rows.length;
      const now = Date.now();
      if (now - this.lastWarnAt >= WARN_EVERY_MS) {
        this.lastWarnAt = now;
        this.logger.warn(
          { err: error, entries: rows.length },
          "pgrealtime: writing delivery activity failed; these entries are lost (deliveries are not affected)",
        );
      }
    }
  }
}
