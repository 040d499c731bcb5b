// Every SQL statement of the library, as text for one schema. Store runs them; nothing else writes SQL.
// Identifiers are always quoted. A row "committed after snapshot S" is one whose transaction was still
// running when S was taken (in its xip list) or started later (>= its xmax): both indexed lookups.
import { HINT_SQL } from "./channel.js";
import type { Snapshot } from "./snapshot.js";
import type { Audience, BacklogFrom } from "./store.js";

/** Quotes an SQL identifier (schema, table or channel name). */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** The statements of the LISTEN session and its probe, which run on connections of their own. */
export const SESSION_SQL = {
  listen: (channel: string) => `LISTEN ${quoteIdent(channel)}`,
  /** `null` on servers before PostgreSQL 14, which have no such setting. */
  idleSessionTimeout: "SELECT current_setting('idle_session_timeout', true) AS value",
  liveness: "SELECT 1",
  notify: "SELECT pg_notify($1, $2)",
} as const;

/** The columns of an event row as readers take them. */
const COLUMNS = `id::text AS id, type, scope, user_id, detail, created_at, txid::text AS txid,
  (extract(epoch FROM created_at) * 1000000)::bigint::text AS created_us`;
const AFTER = "(txid >= $1::xid8 OR txid = ANY($2::xid8[]))";

/** The statements against one schema's tables. */
export function statements(schema: string) {
  const s = quoteIdent(schema);
  const t = `${s}."events"`;
  return {
    // One statement inserts the row and queues its notification, so both commit (or roll back) together
    // in autocommit mode and inside a caller's transaction alike. The payload is only a wake-up.
    insert: `WITH e AS (
  INSERT INTO ${t} (type, scope, user_id, detail, private_data)
  VALUES ($1, $2, $3, $4::jsonb, $5::jsonb) RETURNING id, created_at
)
SELECT id::text AS id, created_at, pg_notify($6, ${HINT_SQL("id")}) FROM e`,
    notify: SESSION_SQL.notify,
    insertControl: `WITH c AS (INSERT INTO ${s}."controls" (kind, user_id) VALUES ($1, $2) RETURNING id)
SELECT pg_notify($3, json_build_object('k', 'hint', 'control', id::text)::text) FROM c`,
    // Commands matter only to processes running now; an hour covers any outage they catch up from.
    pruneControls: `DELETE FROM ${s}."controls" WHERE created_at < now() - interval '1 hour'`,
    currentSnapshot: "SELECT pg_current_snapshot()::text AS s",
    readSince: `SELECT pg_current_snapshot()::text AS snapshot,
  (SELECT json_agg(json_build_object('id', c.id::text, 'kind', c.kind, 'userId', c.user_id) ORDER BY c.id)
    FROM ${s}."controls" c WHERE ${AFTER}) AS controls,
  (SELECT (extract(epoch FROM created_at) * 1000000)::bigint::text FROM ${t} WHERE id = $4::bigint) AS last_us,
  (SELECT pruned_through::text FROM ${s}."state") AS pruned,
  pg_postmaster_start_time() AS started, e.*
FROM (SELECT 1) one LEFT JOIN LATERAL (
  SELECT ${COLUMNS} FROM ${t} WHERE ${AFTER} ORDER BY ${t}.id LIMIT $3
) e ON true`,
    resumePoint: `SELECT pg_current_snapshot()::text AS bound,
  (SELECT min(id)::text FROM ${t}) AS min,
  newest.id::text AS max, (extract(epoch FROM newest.created_at) * 1000000)::bigint::text AS max_us,
  (SELECT pruned_through::text FROM ${s}."state") AS pruned,
  (SELECT pruned_txid::text FROM ${s}."state") AS pruned_txid,
  at.id::text AS at_id, at.snapshot::text AS at_snapshot, at.txid::text AS at_txid,
  (extract(epoch FROM at.created_at) * 1000000)::bigint::text AS at_us
FROM (SELECT 1) one
LEFT JOIN LATERAL (SELECT id, created_at FROM ${t} ORDER BY id DESC LIMIT 1) newest ON true
LEFT JOIN LATERAL (SELECT id, snapshot, txid, created_at FROM ${t} WHERE id <= $1::bigint
  ORDER BY id DESC LIMIT 1) at ON true`,
    prunedThrough: `SELECT pruned_through::text AS pruned FROM ${s}."state"`,
    newest: `SELECT e.id::text AS id, (extract(epoch FROM e.created_at) * 1000000)::bigint::text AS us,
  (SELECT pruned_through::text FROM ${s}."state") AS pruned
FROM (SELECT 1) one LEFT JOIN LATERAL (SELECT id, created_at FROM ${t} ORDER BY id DESC LIMIT 1) e ON true`,
    /** One page of a backlog: `where` and its values from {@link backlogFilter}, then after-id and limit. */
    backlogPage: (where: string, n: number) => `SELECT ${COLUMNS} FROM ${t}
WHERE ${where} AND id > $${n + 1}::bigint ORDER BY ${t}.id LIMIT $${n + 2}`,
    backlogSize: (where: string, n: number) =>
      `SELECT count(*)::int AS n FROM (SELECT 1 FROM ${t} WHERE ${where} LIMIT $${n + 1}) s`,
  };
}

/**
 * Rows a reader at the cursor may not have: a greater id (never visible to the cursor's snapshot), or a
 * lower one whose transaction the snapshot did not see — except the cursor's own transaction, whose
 * rows below the cursor the reader has. Whatever the start, only rows that committed before `bound`.
 */
export function backlogFilter(
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
