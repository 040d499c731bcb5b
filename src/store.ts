import { NOTIFY_LIMIT_BYTES, type PreparedEvent } from "./publish.js";
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

interface EventRow extends Record<string, unknown> {
  id: string;
  type: string;
  scope: Scope;
  user_id: string | null;
  detail: JsonObject;
  created_at: Date;
}

/**
 * Where a reader stands: it has every event committed before the event `id` (or, without an id, before
 * the snapshot was taken). What may have committed after it is every row with a greater id plus every
 * row whose transaction the snapshot did not see; see {@link Store.backlogPage}.
 */
export interface Cursor {
  /** The last event the reader has (decimal string), or `null` for a bare snapshot. */
  id: string | null;
  /**
   * A `pg_snapshot` in its text form (`xmin:xmax:xip,...`): the one stored with that event, or taken;
   * `null` when only greater ids count (a reader starting from the beginning).
   */
  snapshot: string | null;
  /** The transaction of the cursor's own row, when the reader has that row; `null` otherwise. */
  txid: string | null;
}

/** Whose events a backlog holds: one connection's (its user's and global ones), or every scope. */
export type Audience = { userId: string | null } | "all";

/** Every SQL statement against one schema's events table. */
export class Store {
  readonly table: string;
  readonly channel: string;
  private readonly insertSql: string;
  private readonly selectSql: string;

  constructor(readonly schema: string) {
    this.table = `${quoteIdent(schema)}."events"`;
    this.channel = `${schema}_events`;
    // Ids are bigint but travel as text: ORDER BY must name the column, not the text alias.
    // One statement inserts the row and queues its notification, so both commit (or roll back)
    // together in autocommit mode and inside a caller's transaction alike. A payload that would not
    // fit NOTIFY carries only the id; listeners then read the row.
    this.insertSql = `WITH e AS (
  INSERT INTO ${this.table} (type, scope, user_id, detail, private_data)
  VALUES ($1, $2, $3, $4::jsonb, $5::jsonb)
  RETURNING id, created_at, json_build_object('id', id::text, 'type', type, 'scope', scope,
    'userId', user_id, 'detail', detail, 'createdAt', created_at)::text AS payload
)
SELECT id::text AS id, created_at,
  pg_notify($6, CASE WHEN octet_length(payload) < ${NOTIFY_LIMIT_BYTES} THEN payload
    ELSE json_build_object('id', id::text)::text END)
FROM e`;
    this.selectSql = `SELECT id::text AS id, type, scope, user_id, detail, created_at FROM ${this.table} WHERE id = $1`;
  }

  /** Stores an event and notifies it in the same statement; resolves to its id and creation time. */
  async insert(db: Queryable, event: PreparedEvent): Promise<{ id: string; createdAt: Date }> {
    const { rows } = await db.query<{ id: string; created_at: Date }>(this.insertSql, [
      event.type,
      event.scope,
      event.userId,
      event.detailJson,
      event.privateDataJson,
      this.channel,
    ]);
    const row = rows[0];
    if (!row) throw new Error("INSERT … RETURNING returned no row");
    return { id: row.id, createdAt: row.created_at };
  }

  /** Sends a NOTIFY without storing anything (storage: false). */
  async notify(db: Queryable, payload: string): Promise<void> {
    await db.query("SELECT pg_notify($1, $2)", [this.channel, payload]);
  }

  /**
   * What resume needs to judge a cursor: the smallest and greatest stored ids (`null` when the table
   * is empty) and the greatest id ever deleted (0 when none was).
   */
  async bounds(db: Queryable): Promise<{ min: bigint | null; max: bigint | null; prunedThrough: bigint }> {
    const { rows } = await db.query<{ min: string | null; max: string | null; pruned: string }>(
      `SELECT min(id)::text AS min, max(id)::text AS max,
  (SELECT pruned_through::text FROM ${quoteIdent(this.schema)}."state") AS pruned FROM ${this.table}`,
    );
    const row = rows[0];
    return {
      min: row?.min ? BigInt(row.min) : null,
      max: row?.max ? BigInt(row.max) : null,
      prunedThrough: BigInt(row?.pruned ?? "0"),
    };
  }

  /** The greatest id ever deleted (0 when none was). */
  async prunedThrough(db: Queryable): Promise<bigint> {
    const { rows } = await db.query<{ pruned: string }>(
      `SELECT pruned_through::text AS pruned FROM ${quoteIdent(this.schema)}."state"`,
    );
    return BigInt(rows[0]?.pruned ?? "0");
  }

  /**
   * The cursor of a reader whose last event is `id`: that row's snapshot, or, when the row does not
   * exist (an identity gap), the snapshot of the nearest row below, which is older and so covers more.
   * `null` when no row is at or below `id`.
   */
  async cursorAt(db: Queryable, id: bigint): Promise<Cursor | null> {
    const { rows } = await db.query<{ id: string; snapshot: string; txid: string }>(
      `SELECT id::text AS id, snapshot::text AS snapshot, txid::text AS txid FROM ${this.table}
WHERE id <= $1 ORDER BY ${this.table}.id DESC LIMIT 1`,
      [id.toString()],
    );
    const row = rows[0];
    if (!row) return null;
    // A transaction's own xid is not visible in its own snapshot; when the reader has this very row,
    // it has the rows of its transaction below it too.
    return { id: id.toString(), snapshot: row.snapshot, txid: row.id === id.toString() ? row.txid : null };
  }

  /** A cursor for "everything committed so far": the current snapshot, without an id. */
  async currentCursor(db: Queryable): Promise<Cursor> {
    const { rows } = await db.query<{ snapshot: string }>("SELECT pg_current_snapshot()::text AS snapshot");
    return { id: null, snapshot: (rows[0] as { snapshot: string }).snapshot, txid: null };
  }

  /**
   * One page of the events that may have committed after `cursor` and that `audience` may see, in id
   * order, with ids above `after`. A superset: rows of transactions concurrent with the cursor's event
   * may already have been delivered, so readers drop ids they have.
   */
  async backlogPage(
    db: Queryable,
    cursor: Cursor,
    audience: Audience,
    after: string,
    limit: number,
  ): Promise<RealtimeEvent[]> {
    const { where, values } = backlogFilter(cursor, audience);
    const { rows } = await db.query<EventRow>(
      `SELECT id::text AS id, type, scope, user_id, detail, created_at FROM ${this.table}
WHERE ${where} AND id > $${values.length + 1}::bigint ORDER BY ${this.table}.id LIMIT $${values.length + 2}`,
      [...values, after, limit],
    );
    return rows.map(rowToEvent);
  }

  /** How many events a backlog holds, counting no further than `limit + 1`. */
  async backlogSize(db: Queryable, cursor: Cursor, audience: Audience, limit: number): Promise<number> {
    const { where, values } = backlogFilter(cursor, audience);
    const { rows } = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM (SELECT 1 FROM ${this.table} WHERE ${where} LIMIT $${values.length + 1}) s`,
      [...values, limit + 1],
    );
    return rows[0]?.n ?? 0;
  }

  /** Reads one stored event, or `null` when no such row exists (pruned, or never committed). */
  async get(db: Queryable, id: string): Promise<RealtimeEvent | null> {
    const { rows } = await db.query<EventRow>(this.selectSql, [id]);
    const row = rows[0];
    return row ? rowToEvent(row) : null;
  }
}

/**
 * Rows that may have committed after the cursor: a greater id, or a transaction its snapshot did not
 * see (in progress then, or started later), except the cursor's own transaction, whose rows below the
 * cursor its reader has.
 */
function backlogFilter(cursor: Cursor, audience: Audience): { where: string; values: unknown[] } {
  const values: unknown[] = [cursor.id, cursor.snapshot, cursor.txid];
  let where = `(id > $1::bigint OR (txid >= pg_snapshot_xmin($2::pg_snapshot)
    AND NOT pg_visible_in_snapshot(txid, $2::pg_snapshot) AND ($1::bigint IS NULL OR id < $1::bigint)
    AND ($3::xid8 IS NULL OR txid <> $3::xid8)))`;
  if (audience !== "all") {
    if (audience.userId === null) {
      where += " AND scope = 'global'";
    } else {
      values.push(audience.userId);
      where += " AND (scope = 'global' OR (scope = 'user' AND user_id = $4))";
    }
  }
  return { where, values };
}

function rowToEvent(row: EventRow): RealtimeEvent {
  return {
    id: row.id,
    type: row.type,
    scope: row.scope,
    userId: row.user_id,
    detail: row.detail,
    createdAt: row.created_at,
  };
}
