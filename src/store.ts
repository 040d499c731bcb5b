import type { Pool } from "pg";
import { NOTIFY_LIMIT_BYTES } from "./channel.js";
import { RealtimeError } from "./errors.js";
import type { Names } from "./names.js";
import type { PreparedEvent } from "./publish.js";
import { parseSnapshot, type Snapshot } from "./snapshot.js";
import { backlogFilter, statements } from "./statements.js";
import type { JsonObject, RealtimeEvent, Scope } from "./types.js";

/** Anything with the `pg` `query(text, values)` shape: a Pool, a Client, a PoolClient. */
export interface Queryable {
  query<R extends Record<string, unknown> = Record<string, unknown>>(
    text: string,
    values?: unknown[],
  ): Promise<{ rows: R[] }>;
}

/** A stored event as read back, with what cursors need: the row's creation time in microseconds. */
export interface StoredRow {
  event: RealtimeEvent;
  createdMicros: string;
  /** The transaction that wrote the row. */
  txid: string;
}

interface EventRow extends Record<string, unknown> {
  id: string;
  type: string;
  scope: Scope;
  user_id: string | null;
  detail: JsonObject;
  created_at: Date;
  created_us: string;
  txid: string;
  replay_of: string | null;
}

/**
 * Where a reader stands: it has the event `id` and every event committed before that event was
 * inserted (`snapshot`, stored with the row). `snapshot: null` means only greater ids count (a cursor
 * below the first row). `txid` is the transaction of the row itself, when the reader has that very row.
 */
export interface Cursor {
  id: string;
  snapshot: Snapshot | null;
  txid: string | null;
}

/**
 * Where a backlog starts: a client's cursor; `{ since }`, every row committed after a snapshot (the
 * receiver's later pages); `{ createdSince }`, every row created since a time (after a history change).
 */
export type BacklogFrom = Cursor | { since: Snapshot } | { createdSince: Date };

/** Whose events a backlog holds: one connection's (its user's and global ones), or every scope. */
export type Audience = { userId: string | null } | "all";

/** What one read of the receiver returns: new rows, commands, and what proves the history unchanged. */
export interface ReadResult {
  /** The snapshot of the read: every row it returned committed before it. */
  snapshot: Snapshot;
  rows: StoredRow[];
  controls: Array<{ id: string; kind: "disconnect"; userId: string }>;
  /** The creation time of the row the reader last had, or `null` when that row is gone. */
  lastMicros: string | null;
  prunedThrough: bigint;
  serverStartedAt: Date;
}

// A missing table, schema or column: the schema is not migrated (far enough).
const MISSING_TABLE = new Set(["42P01", "3F000", "42703"]);

/** Runs every statement against one schema's tables, on the instance's pool unless told otherwise. */
export class Store {
  readonly channel: string;
  private readonly sql: ReturnType<typeof statements>;

  constructor(
    private readonly pool: Pool,
    readonly names: Names,
  ) {
    this.channel = names.channel;
    this.sql = statements(names);
  }

  /** Stores an event and queues its notification; resolves to its id and creation time. */
  async insert(event: PreparedEvent, db: Queryable = this.pool): Promise<{ id: string; createdAt: Date }> {
    const rows = await this.run<{ id: string; created_at: Date }>(
      this.sql.insert,
      [event.type, event.scope, event.userId, event.detailJson, event.privateDataJson, this.channel],
      db,
    );
    const row = rows[0];
    if (!row) throw new Error("INSERT … RETURNING returned no row");
    return { id: row.id, createdAt: row.created_at };
  }

  /**
   * Stores events in one statement and queues one notification for them; resolves to their ids and
   * creation times, in the order given.
   */
  async insertMany(events: readonly PreparedEvent[]): Promise<Array<{ id: string; createdAt: Date }>> {
    const rows = await this.run<{ id: string; created_at: Date }>(this.sql.insertMany, [
      events.map((event) => event.type),
      events.map((event) => event.scope),
      events.map((event) => event.userId),
      events.map((event) => event.detailJson),
      events.map((event) => event.privateDataJson),
      this.channel,
    ]);
    if (rows.length !== events.length)
      throw new Error(`INSERT … RETURNING returned ${rows.length} rows for ${events.length}`);
    return rows.map((row) => ({ id: row.id, createdAt: row.created_at }));
  }

  /** Sends a NOTIFY on the channel (storage off). */
  async notify(payload: string, db: Queryable = this.pool): Promise<void> {
    if (Buffer.byteLength(payload) >= NOTIFY_LIMIT_BYTES) throw new RangeError("NOTIFY payload too large");
    await this.run(this.sql.notify, [this.channel, payload], db);
  }

  /** Records a command for every process (read with the events) and wakes them. */
  async insertControl(kind: "disconnect", userId: string): Promise<void> {
    await this.run(this.sql.insertControl, [kind, userId, this.channel]);
    await this.run(this.sql.pruneControls, []);
  }

  /** The current snapshot: a reader starting now has everything committed before it. */
  async currentSnapshot(): Promise<Snapshot> {
    const rows = await this.run<{ s: string }>(this.sql.currentSnapshot, []);
    return parseSnapshot((rows[0] as { s: string }).s);
  }

  /**
   * The receiver's read, in one statement: rows and commands committed after `since` (visible now, not
   * then), at most `limit` rows in id order, with the statement's own snapshot. It also reads what the
   * receiver checks its history against: the row it last had, the pruning mark, the server's start.
   */
  async readSince(since: Snapshot, lastId: string | null, limit: number): Promise<ReadResult> {
    const rows = await this.run<EventRow & { snapshot: string; controls: ReadResult["controls"] | null }>(
      this.sql.readSince,
      [since.xmax, since.xip, limit, lastId],
    );
    const first = rows[0] as Record<string, unknown>;
    return {
      snapshot: parseSnapshot(first.snapshot as string),
      rows: rows.filter((row) => row.id !== null).map(toStored),
      controls: (first.controls as ReadResult["controls"] | null) ?? [],
      lastMicros: (first.last_us as string | null) ?? null,
      prunedThrough: BigInt((first.pruned as string | null) ?? "0"),
      serverStartedAt: first.started as Date,
    };
  }

  /**
   * The pages of rows that the reader at `from` may not have, that committed before `bound` and that
   * `audience` may see, in id order, with ids above `after`: the one backlog iterator of catch-up and
   * replay. A superset: rows of transactions concurrent with a cursor's event may already have been
   * delivered. Each page is its own query, so a slow consumer holds no database connection.
   */
  async *backlog(
    from: BacklogFrom,
    bound: Snapshot,
    audience: Audience,
    after = "-1",
    pageSize = 500,
  ): AsyncGenerator<StoredRow[]> {
    const { where, values } = backlogFilter(from, bound, audience);
    for (let cursor = after; ; ) {
      const page = (
        await this.run<EventRow>(this.sql.backlogPage(where, values.length), [...values, cursor, pageSize])
      ).map(toStored);
      yield page;
      const last = page.at(-1);
      if (!last || page.length < pageSize) return;
      cursor = last.event.id;
    }
  }

  /** How many rows a backlog holds, counting no further than `limit + 1`. */
  async backlogSize(cursor: Cursor, bound: Snapshot, audience: Audience, limit: number): Promise<number> {
    const { where, values } = backlogFilter(cursor, bound, audience);
    const rows = await this.run<{ n: number }>(this.sql.backlogSize(where, values.length), [
      ...values,
      limit + 1,
    ]);
    return rows[0]?.n ?? 0;
  }

  /**
   * What resume needs to judge a cursor, in one statement: the row at or nearest below `id` (its
   * snapshot, transaction and creation time), the smallest and greatest stored ids, the newest row's
   * creation time, the pruning mark, and a snapshot to bound the replay with.
   */
  async resumePoint(id: string): Promise<ResumePoint> {
    const row = (await this.run<ResumeRow>(this.sql.resumePoint, [id]))[0] as ResumeRow;
    return {
      bound: parseSnapshot(row.bound),
      min: row.min === null ? null : BigInt(row.min),
      max: row.max === null ? null : { id: BigInt(row.max), createdMicros: row.max_us as string },
      prunedThrough: BigInt(row.pruned ?? "0"),
      prunedTxid: row.pruned_txid === null ? null : BigInt(row.pruned_txid),
      at:
        row.at_id === null
          ? null
          : {
              id: row.at_id,
              snapshot: parseSnapshot(row.at_snapshot as string),
              txid: row.at_txid as string,
              createdMicros: row.at_us as string,
            },
    };
  }

  /** The greatest id ever deleted (0 when none was). */
  async prunedThrough(): Promise<bigint> {
    const rows = await this.run<{ pruned: string }>(this.sql.prunedThrough, []);
    return BigInt(rows[0]?.pruned ?? "0");
  }

  /** The greatest stored or deleted id, with the newest row's creation time when it is stored. */
  async newest(): Promise<{ id: bigint; createdMicros: string | null }> {
    const rows = await this.run<{ id: string | null; us: string | null; pruned: string }>(
      this.sql.newest,
      [],
    );
    const row = rows[0] as { id: string | null; us: string | null; pruned: string };
    return newestOf(
      row.id === null ? null : { id: BigInt(row.id), createdMicros: row.us as string },
      BigInt(row.pruned),
    );
  }

  /** Runs one statement; a missing table or schema becomes `MIGRATION_REQUIRED`. */
  async run<R extends Record<string, unknown>>(
    text: string,
    values: unknown[],
    db: Queryable = this.pool,
  ): Promise<R[]> {
    try {
      return (await db.query<R>(text, values)).rows;
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code !== undefined && MISSING_TABLE.has(code)) {
        throw new RealtimeError(
          "MIGRATION_REQUIRED",
          `pgrealtime: the tables of "${this.names.schema}"."${this.names.table}" are missing or out of date (${(error as Error).message}); run \`npx pgrealtime migrate\` (or await realtime.migrate())`,
          { cause: error },
        );
      }
      throw error;
    }
  }
}

interface ResumeRow extends Record<string, unknown> {
  bound: string;
  min: string | null;
  max: string | null;
  max_us: string | null;
  pruned: string | null;
  pruned_txid: string | null;
  at_id: string | null;
  at_snapshot: string | null;
  at_txid: string | null;
  at_us: string | null;
}

/** See {@link Store.resumePoint}. */
export interface ResumePoint {
  bound: Snapshot;
  min: bigint | null;
  max: { id: bigint; createdMicros: string } | null;
  prunedThrough: bigint;
  /** The newest transaction whose rows were ever deleted, or `null`. */
  prunedTxid: bigint | null;
  at: { id: string; snapshot: Snapshot; txid: string; createdMicros: string } | null;
}

/** The cursor to go on from after a reset: the newest row, or the pruning mark when it is newer. */
export function newestOf(
  max: { id: bigint; createdMicros: string } | null,
  prunedThrough: bigint,
): { id: bigint; createdMicros: string | null } {
  return max !== null && max.id > prunedThrough ? max : { id: prunedThrough, createdMicros: null };
}

/** The event a row holds, as handlers and browsers get it (`replayOf` only on a replay). */
export function eventOf(
  row: Pick<EventRow, "id" | "type" | "scope" | "user_id" | "detail" | "created_at" | "replay_of">,
): RealtimeEvent {
  return {
    id: row.id,
    type: row.type,
    scope: row.scope,
    userId: row.user_id,
    detail: row.detail,
    createdAt: row.created_at,
    ...(row.replay_of === null ? {} : { replayOf: row.replay_of }),
  };
}

function toStored(row: EventRow): StoredRow {
  return {
    event: eventOf(row),
    createdMicros: row.created_us,
    txid: row.txid,
  };
}
