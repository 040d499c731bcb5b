import type { Pool } from "pg";
import { HINT_SQL, NOTIFY_LIMIT_BYTES } from "./channel.js";
import { RealtimeError } from "./errors.js";
import type { PreparedEvent } from "./publish.js";
import { parseSnapshot, type Snapshot } from "./snapshot.js";
import type { JsonObject, RealtimeEvent, Scope } from "./types.js";

/** Anything with the `pg` `query(text, values)` shape: a Pool, a Client, a PoolClient. */
export interface Queryable {
  query<R extends Record<string, unknown> = Record<string, unknown>>(
    text: string,
    values?: unknown[],
  ): Promise<{ rows: R[] }>;
}

/** Quotes an SQL identifier (schema, table or channel name). */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
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

const COLUMNS = `id::text AS id, type, scope, user_id, detail, created_at, txid::text AS txid,
  (extract(epoch FROM created_at) * 1000000)::bigint::text AS created_us`;
const MISSING_TABLE = new Set(["42P01", "3F000"]);

/** Every SQL statement against one schema's tables, run on the instance's pool unless told otherwise. */
export class Store {
  readonly channel: string;
  private readonly table: string;
  private readonly schemaIdent: string;
  private readonly insertSql: string;

  constructor(
    private readonly pool: Pool,
    readonly schema: string,
  ) {
    this.schemaIdent = quoteIdent(schema);
    this.table = `${this.schemaIdent}."events"`;
    this.channel = `${schema}_events`;
    // One statement inserts the row and queues its notification, so both commit (or roll back) together
    // in autocommit mode and inside a caller's transaction alike. The payload is only a wake-up.
    this.insertSql = `WITH e AS (
  INSERT INTO ${this.table} (type, scope, user_id, detail, private_data)
  VALUES ($1, $2, $3, $4::jsonb, $5::jsonb) RETURNING id, created_at
)
SELECT id::text AS id, created_at, pg_notify($6, ${HINT_SQL("id")}) FROM e`;
  }

  /** Stores an event and queues its notification; resolves to its id and creation time. */
  async insert(event: PreparedEvent, db: Queryable = this.pool): Promise<{ id: string; createdAt: Date }> {
    const rows = await this.run<{ id: string; created_at: Date }>(
      this.insertSql,
      [event.type, event.scope, event.userId, event.detailJson, event.privateDataJson, this.channel],
      db,
    );
    const row = rows[0];
    if (!row) throw new Error("INSERT … RETURNING returned no row");
    return { id: row.id, createdAt: row.created_at };
  }

  /** Sends a NOTIFY on the channel (storage off, probes). */
  async notify(payload: string, db: Queryable = this.pool): Promise<void> {
    if (Buffer.byteLength(payload) >= NOTIFY_LIMIT_BYTES) throw new RangeError("NOTIFY payload too large");
    await this.run("SELECT pg_notify($1, $2)", [this.channel, payload], db);
  }

  /** Records a command for every process (read with the events) and wakes them. */
  async insertControl(kind: "disconnect", userId: string): Promise<void> {
    await this.run(
      `WITH c AS (INSERT INTO ${this.schemaIdent}."controls" (kind, user_id) VALUES ($1, $2) RETURNING id)
SELECT pg_notify($3, json_build_object('k', 'hint', 'control', id::text)::text) FROM c`,
      [kind, userId, this.channel],
    );
    // Commands matter only to processes running now; an hour covers any outage they catch up from.
    await this.run(
      `DELETE FROM ${this.schemaIdent}."controls" WHERE created_at < now() - interval '1 hour'`,
      [],
    );
  }

  /** The current snapshot: a reader starting now has everything committed before it. */
  async currentSnapshot(): Promise<Snapshot> {
    const rows = await this.run<{ s: string }>("SELECT pg_current_snapshot()::text AS s", []);
    return parseSnapshot((rows[0] as { s: string }).s);
  }

  /**
   * The receiver's read, in one statement: rows and commands committed after `since` (visible now, not
   * then), at most `limit` rows in id order, with the statement's own snapshot. It also reads what the
   * receiver checks its history against: the row it last had, the pruning mark, the server's start.
   */
  async readSince(since: Snapshot, lastId: string | null, limit: number): Promise<ReadResult> {
    const after = `(txid >= $1::xid8 OR txid = ANY($2::xid8[]))`;
    const rows = await this.run<EventRow & { snapshot: string; controls: ReadResult["controls"] | null }>(
      `SELECT pg_current_snapshot()::text AS snapshot,
  (SELECT json_agg(json_build_object('id', c.id::text, 'kind', c.kind, 'userId', c.user_id) ORDER BY c.id)
    FROM ${this.schemaIdent}."controls" c WHERE ${after}) AS controls,
  (SELECT (extract(epoch FROM created_at) * 1000000)::bigint::text FROM ${this.table} WHERE id = $4::bigint) AS last_us,
  (SELECT pruned_through::text FROM ${this.schemaIdent}."state") AS pruned,
  pg_postmaster_start_time() AS started, e.*
FROM (SELECT 1) one LEFT JOIN LATERAL (
  SELECT ${COLUMNS} FROM ${this.table} WHERE ${after} ORDER BY ${this.table}.id LIMIT $3
) e ON true`,
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
   * One page of rows that the reader at `cursor` may not have, that committed before `bound` and that
   * `audience` may see, in id order, with ids above `after`. A superset: rows of transactions concurrent
   * with the cursor's event may already have been delivered, so readers drop ids they have.
   */
  async backlogPage(
    from: BacklogFrom,
    bound: Snapshot,
    audience: Audience,
    after: string,
    limit: number,
  ): Promise<StoredRow[]> {
    const { where, values } = backlogFilter(from, bound, audience);
    const rows = await this.run<EventRow>(
      `SELECT ${COLUMNS} FROM ${this.table}
WHERE ${where} AND id > $${values.length + 1}::bigint ORDER BY ${this.table}.id LIMIT $${values.length + 2}`,
      [...values, after, limit],
    );
    return rows.map(toStored);
  }

  /** How many rows a backlog holds, counting no further than `limit + 1`. */
  async backlogSize(cursor: Cursor, bound: Snapshot, audience: Audience, limit: number): Promise<number> {
    const { where, values } = backlogFilter(cursor, bound, audience);
    const rows = await this.run<{ n: number }>(
      `SELECT count(*)::int AS n FROM (SELECT 1 FROM ${this.table} WHERE ${where} LIMIT $${values.length + 1}) s`,
      [...values, limit + 1],
    );
    return rows[0]?.n ?? 0;
  }

  /**
   * What resume needs to judge a cursor, in one statement: the row at or nearest below `id` (its
   * snapshot, transaction and creation time), the smallest and greatest stored ids, the newest row's
   * creation time, the pruning mark, and a snapshot to bound the replay with.
   */
  async resumePoint(id: string): Promise<ResumePoint> {
    const rows = await this.run<ResumeRow>(
      `SELECT pg_current_snapshot()::text AS bound,
  (SELECT min(id)::text FROM ${this.table}) AS min,
  newest.id::text AS max, (extract(epoch FROM newest.created_at) * 1000000)::bigint::text AS max_us,
  (SELECT pruned_through::text FROM ${this.schemaIdent}."state") AS pruned,
  at.id::text AS at_id, at.snapshot::text AS at_snapshot, at.txid::text AS at_txid,
  (extract(epoch FROM at.created_at) * 1000000)::bigint::text AS at_us
FROM (SELECT 1) one
LEFT JOIN LATERAL (SELECT id, created_at FROM ${this.table} ORDER BY id DESC LIMIT 1) newest ON true
LEFT JOIN LATERAL (SELECT id, snapshot, txid, created_at FROM ${this.table} WHERE id <= $1::bigint
  ORDER BY id DESC LIMIT 1) at ON true`,
      [id],
    );
    const row = rows[0] as ResumeRow;
    return {
      bound: parseSnapshot(row.bound),
      min: row.min === null ? null : BigInt(row.min),
      max: row.max === null ? null : { id: BigInt(row.max), createdMicros: row.max_us as string },
      prunedThrough: BigInt(row.pruned ?? "0"),
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
    const rows = await this.run<{ pruned: string }>(
      `SELECT pruned_through::text AS pruned FROM ${this.schemaIdent}."state"`,
      [],
    );
    return BigInt(rows[0]?.pruned ?? "0");
  }

  /** The greatest stored or deleted id, with the newest row's creation time when it is stored. */
  async newest(): Promise<{ id: bigint; createdMicros: string | null }> {
    const rows = await this.run<{ id: string | null; us: string | null; pruned: string }>(
      `SELECT e.id::text AS id, (extract(epoch FROM e.created_at) * 1000000)::bigint::text AS us,
  (SELECT pruned_through::text FROM ${this.schemaIdent}."state") AS pruned
FROM (SELECT 1) one LEFT JOIN LATERAL (SELECT id, created_at FROM ${this.table} ORDER BY id DESC LIMIT 1) e ON true`,
      [],
    );
    const row = rows[0] as { id: string | null; us: string | null; pruned: string };
    return newestOf(
      row.id === null ? null : { id: BigInt(row.id), createdMicros: row.us as string },
      BigInt(row.pruned),
    );
  }

  /** Runs one statement; a missing table or schema becomes `MIGRATION_REQUIRED`. */
  private async run<R extends Record<string, unknown>>(
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
          `pgrealtime: the tables in schema "${this.schema}" are missing or out of date (${(error as Error).message}); run \`npx pgrealtime migrate\` (or await realtime.migrate())`,
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
  at: { id: string; snapshot: Snapshot; txid: string; createdMicros: string } | null;
}

/** The cursor to go on from after a reset: the newest row, or the pruning mark when it is newer. */
export function newestOf(
  max: { id: bigint; createdMicros: string } | null,
  prunedThrough: bigint,
): { id: bigint; createdMicros: string | null } {
  return max !== null && max.id > prunedThrough ? max : { id: prunedThrough, createdMicros: null };
}

/**
 * Rows a reader at the cursor may not have: a greater id (never visible to the cursor's snapshot), or a
 * lower one whose transaction the snapshot did not see — except the cursor's own transaction, whose
 * rows below the cursor the reader has. Whatever the start, only rows that committed before `bound`.
 */
function backlogFilter(
  cursor: BacklogFrom,
  bound: Snapshot,
  audience: Audience,
): { where: string; values: unknown[] } {
  const values: unknown[] = [bound.text];
  let where: string;
  if ("createdSince" in cursor) {
    values.push(cursor.createdSince);
    where = "created_at >= $2";
  } else if ("since" in cursor) {
    values.push(cursor.since.xmax, cursor.since.xip);
    where = "(txid >= $2::xid8 OR txid = ANY($3::xid8[]))";
  } else {
    values.push(cursor.id, cursor.snapshot?.xmax ?? null, cursor.snapshot?.xip ?? null, cursor.txid);
    where = `(id > $2::bigint OR ($3::xid8 IS NOT NULL AND (txid >= $3::xid8 OR txid = ANY($4::xid8[]))
    AND id < $2::bigint AND ($5::xid8 IS NULL OR txid <> $5::xid8)))`;
  }
  where += " AND pg_visible_in_snapshot(txid, $1::pg_snapshot)";
  if (audience !== "all") {
    if (audience.userId === null) {
      where += " AND scope = 'global'";
    } else {
      values.push(audience.userId);
      where += ` AND (scope = 'global' OR (scope = 'user' AND user_id = $${values.length}))`;
    }
  }
  return { where: `(${where})`, values };
}

function toStored(row: EventRow): StoredRow {
  return {
    event: {
      id: row.id,
      type: row.type,
      scope: row.scope,
      userId: row.user_id,
      detail: row.detail,
      createdAt: row.created_at,
    },
    createdMicros: row.created_us,
    txid: row.txid,
  };
}
