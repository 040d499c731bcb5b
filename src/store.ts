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

/** Every SQL statement against one schema's events table. */
export class Store {
  readonly table: string;
  readonly channel: string;
  private readonly insertSql: string;
  private readonly selectSql: string;

  constructor(readonly schema: string) {
    this.table = `${quoteIdent(schema)}."events"`;
    this.channel = `${schema}_events`;
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

  /** Reads one stored event, or `null` when no such row exists (pruned, or never committed). */
  async get(db: Queryable, id: string): Promise<RealtimeEvent | null> {
    const { rows } = await db.query<EventRow>(this.selectSql, [id]);
    const row = rows[0];
    return row ? rowToEvent(row) : null;
  }
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
