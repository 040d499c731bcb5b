// Every SQL statement of the library, as text for one schema. Store runs them; nothing else writes SQL.
// Identifiers are always quoted. A row "committed after snapshot S" is one whose transaction was still
// running when S was taken (in its xip list) or started later (>= its xmax): both indexed lookups.
import { HINT_SQL } from "./channel.js";
import { type Names, quoteIdent } from "./names.js";
import type { Snapshot } from "./snapshot.js";
import type { Audience, BacklogFrom } from "./store.js";

/** The statements of the LISTEN session and its probe, which run on connections of their own. */
export const SESSION_SQL = {
  listen: (channel: string) => `LISTEN ${quoteIdent(channel)}`,
  /** `null` on servers before PostgreSQL 14, which have no such setting. */
  idleSessionTimeout: "SELECT current_setting('idle_session_timeout', true) AS value",
  liveness: "SELECT 1",
  notify: "SELECT pg_notify($1, $2)",
} as const;

/**
 * The retention's lock (src/retention.ts), taken on a connection of its own for one run: a session lock,
 * so it spans the prune's batches and goes with the session if the connection is lost.
 */
export const RETENTION_SQL = {
  tryLock: "SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked",
  unlock: "SELECT pg_advisory_unlock(hashtextextended($1, 0)) AS unlocked",
} as const;

/** The columns of an event row as readers take them. */
const COLUMNS = `id::text AS id, type, scope, user_id, detail, created_at, txid::text AS txid, replay_of::text AS replay_of,
  (extract(epoch FROM created_at) * 1000000)::bigint::text AS created_us`;
const AFTER = "(txid >= $1::xid8 OR txid = ANY($2::xid8[]))";

/** The statements of the delivery path against one installation's tables. */
export function statements(names: Names) {
  const t = names.qualified("events");
  const controls = names.qualified("controls");
  const state = names.qualified("state");
  return {
    // One statement inserts the row and queues its notification, so both commit (or roll back) together
    // in autocommit mode and inside a caller's transaction alike. The payload is only a wake-up.
    insert: `WITH e AS (
  INSERT INTO ${t} (type, scope, user_id, detail, private_data)
  VALUES ($1, $2, $3, $4::jsonb, $5::jsonb) RETURNING id, created_at
)
SELECT id::text AS id, created_at, pg_notify($6, ${HINT_SQL("id")}) FROM e`,
    // Many events in one statement (one transaction, one commit): ids are handed out in the order of
    // the arrays, and one notification wakes every process for the whole batch.
    insertMany: `WITH e AS (
  INSERT INTO ${t} (type, scope, user_id, detail, private_data)
  SELECT type, scope, user_id, detail, private_data
  FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::jsonb[]) WITH ORDINALITY
    AS b(type, scope, user_id, detail, private_data, ord)
  ORDER BY ord RETURNING id, created_at
),
notified AS (SELECT pg_notify($6, ${HINT_SQL("m.id")}) FROM (SELECT max(id) AS id FROM e) m)
SELECT e.id::text AS id, e.created_at, (SELECT count(*) FROM notified) AS notified FROM e ORDER BY e.id`,
    notify: SESSION_SQL.notify,
    insertControl: `WITH c AS (INSERT INTO ${controls} (kind, user_id) VALUES ($1, $2) RETURNING id)
SELECT pg_notify($3, json_build_object('k', 'hint', 'control', id::text)::text) FROM c`,
    // Commands matter only to processes running now; an hour covers any outage they catch up from.
    pruneControls: `DELETE FROM ${controls} WHERE created_at < now() - interval '1 hour'`,
    currentSnapshot: "SELECT pg_current_snapshot()::text AS s",
    readSince: `SELECT pg_current_snapshot()::text AS snapshot,
  (SELECT json_agg(json_build_object('id', c.id::text, 'kind', c.kind, 'userId', c.user_id) ORDER BY c.id)
    FROM ${controls} c WHERE ${AFTER}) AS controls,
  (SELECT (extract(epoch FROM created_at) * 1000000)::bigint::text FROM ${t} WHERE id = $4::bigint) AS last_us,
  (SELECT pruned_through::text FROM ${state}) AS pruned,
  pg_postmaster_start_time() AS started, e.*
FROM (SELECT 1) one LEFT JOIN LATERAL (
  SELECT ${COLUMNS} FROM ${t} WHERE ${AFTER} ORDER BY ${t}.id LIMIT $3
) e ON true`,
    resumePoint: `SELECT pg_current_snapshot()::text AS bound,
  (SELECT min(id)::text FROM ${t}) AS min,
  newest.id::text AS max, (extract(epoch FROM newest.created_at) * 1000000)::bigint::text AS max_us,
  (SELECT pruned_through::text FROM ${state}) AS pruned,
  (SELECT pruned_txid::text FROM ${state}) AS pruned_txid,
  at.id::text AS at_id, at.snapshot::text AS at_snapshot, at.txid::text AS at_txid,
  (extract(epoch FROM at.created_at) * 1000000)::bigint::text AS at_us
FROM (SELECT 1) one
LEFT JOIN LATERAL (SELECT id, created_at FROM ${t} ORDER BY id DESC LIMIT 1) newest ON true
LEFT JOIN LATERAL (SELECT id, snapshot, txid, created_at FROM ${t} WHERE id <= $1::bigint
  ORDER BY id DESC LIMIT 1) at ON true`,
    prunedThrough: `SELECT pruned_through::text AS pruned FROM ${state}`,
    newest: `SELECT e.id::text AS id, (extract(epoch FROM e.created_at) * 1000000)::bigint::text AS us,
  (SELECT pruned_through::text FROM ${state}) AS pruned
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

/** How far an event got, from its activity (index `(event_id, kind)`): `sent`, `dispatched` or `new`. */
const STATUS = (activity: string) => `CASE
    WHEN EXISTS (SELECT 1 FROM ${activity} a WHERE a.event_id = e.id AND a.kind = 'sent') THEN 'sent'
    WHEN EXISTS (SELECT 1 FROM ${activity} a WHERE a.event_id = e.id AND a.kind = 'dispatched') THEN 'dispatched'
    ELSE 'new' END`;

/** The statements of the stored-event API, replay, activity, the process table and pruning. */
export function historyStatements(names: Names) {
  const t = names.qualified("events");
  const activity = names.qualified("activity");
  const processes = names.qualified("processes");
  const stored = `SELECT e.id::text AS id, e.type, e.scope, e.user_id, e.detail, e.private_data, e.created_at,
  e.replay_of::text AS replay_of, ${STATUS(activity)} AS status FROM ${t} e`;
  return {
    get: `${stored} WHERE e.id = $1::bigint`,
    /** Newest first, by the primary key or the index of a filtered column; `where` is on `e`. */
    list: (where: string, limit: number) => `${stored} WHERE ${where} ORDER BY e.id DESC LIMIT ${limit}`,
    /** The filter on an event's status, for `list`'s `where`. */
    statusIs: (param: string) => `(${STATUS(activity)}) = ${param}`,
    activity: `SELECT kind, created_at, process, user_id, connections, resumed, replay_id::text AS replay_id
FROM ${activity} WHERE event_id = $1::bigint ORDER BY id`,
    insertActivity: `INSERT INTO ${activity} (event_id, kind, process, user_id, connections, resumed)
SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::int[], $6::boolean[])`,
    // All or nothing in one statement: nothing is inserted unless every original exists. Each replay is
    // logged on its original, and one notification wakes every process.
    replay: `WITH wanted AS (SELECT * FROM unnest($1::bigint[]) WITH ORDINALITY AS w(id, ord)),
missing AS (SELECT w.id FROM wanted w LEFT JOIN ${t} o ON o.id = w.id WHERE o.id IS NULL),
inserted AS (
  INSERT INTO ${t} (type, scope, user_id, detail, replay_of)
  SELECT o.type, o.scope, o.user_id, o.detail, o.id FROM wanted w JOIN ${t} o ON o.id = w.id
  WHERE NOT EXISTS (SELECT 1 FROM missing) ORDER BY w.ord
  RETURNING id, type, scope, user_id, detail, created_at, replay_of
),
logged AS (
  INSERT INTO ${activity} (event_id, kind, replay_id) SELECT replay_of, 'replayed', id FROM inserted
),
notified AS (SELECT pg_notify($2, ${HINT_SQL("m.id")}) FROM (SELECT max(id) AS id FROM inserted) m WHERE m.id IS NOT NULL)
SELECT i.id::text AS id, i.type, i.scope, i.user_id, i.detail, i.created_at, i.replay_of::text AS replay_of,
  (SELECT array_agg(id::text) FROM missing) AS missing, (SELECT count(*) FROM notified) AS notified
FROM (SELECT 1) one LEFT JOIN inserted i ON true
ORDER BY i.id`,
    heartbeat: `INSERT INTO ${processes}
  (id, host, pid, started_at, expires_at, connections, anonymous, users, listener)
VALUES ($1, $2, $3, $4, now() + $5::int * interval '1 millisecond', $6, $7, $8, $9)
ON CONFLICT (id) DO UPDATE SET seen_at = now(), expires_at = EXCLUDED.expires_at,
  connections = EXCLUDED.connections, anonymous = EXCLUDED.anonymous, users = EXCLUDED.users,
  listener = EXCLUDED.listener`,
    forgetProcesses: `DELETE FROM ${processes} WHERE id = $1 OR expires_at < now() - interval '1 day'`,
    processes: `SELECT id, host, pid, started_at, seen_at, connections, anonymous, users, listener
FROM ${processes} WHERE expires_at > now() ORDER BY started_at, id`,
    status: `SELECT (SELECT GREATEST(reltuples, 0)::bigint::text FROM pg_class WHERE oid = $1::regclass) AS estimated,
  pg_total_relation_size($1::regclass)::text AS bytes,
  (SELECT json_build_object('id', id::text, 'createdAt', created_at) FROM ${t} ORDER BY id LIMIT 1) AS oldest,
  (SELECT json_build_object('id', id::text, 'createdAt', created_at) FROM ${t} ORDER BY id DESC LIMIT 1) AS newest,
  pg_notification_queue_usage() AS queue_usage`,
    // Oldest first, in batches, skipping rows another pruner holds: no wait, no deadlock.
    prune: `WITH doomed AS (
  SELECT id FROM ${t} WHERE created_at < now() - $1::bigint * interval '1 millisecond'
    AND ($2::text IS NULL OR type = $2) ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED
),
gone AS (DELETE FROM ${t} e USING doomed WHERE e.id = doomed.id RETURNING e.id),
activity AS (DELETE FROM ${activity} a USING gone WHERE a.event_id = gone.id RETURNING 1)
SELECT (SELECT count(*) FROM gone)::int AS events, (SELECT count(*) FROM activity)::int AS activity`,
    pruneCount: `WITH doomed AS (
  SELECT id FROM ${t} WHERE created_at < now() - $1::bigint * interval '1 millisecond'
    AND ($2::text IS NULL OR type = $2)
)
SELECT (SELECT count(*) FROM doomed)::int AS events,
  (SELECT count(*) FROM ${activity} a JOIN doomed ON a.event_id = doomed.id)::int AS activity`,
  };
}
