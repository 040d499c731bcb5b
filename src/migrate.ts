import type { Pool } from "pg";
import { quoteIdent } from "./store.js";

interface Migration {
  version: number;
  name: string;
  /** The statements, for a schema name already quoted. */
  sql(schema: string): string;
}

// Numbered and append-only: a released migration is never edited, a change is a new entry.
const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "events",
    sql: (s) => `CREATE TABLE ${s}."events" (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  type text NOT NULL CHECK (type ~ '^[A-Za-z0-9_.-]{1,100}$'),
  scope text NOT NULL CHECK (scope IN ('user', 'global', 'system')),
  user_id text NULL CHECK (scope <> 'user' OR user_id IS NOT NULL),
  detail jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(detail) = 'object'),
  private_data jsonb NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  -- Ids are handed out at insert, not at commit, so a lower id can commit after a higher one was
  -- delivered. The inserting transaction and the snapshot it saw tell resume and catch-up which rows
  -- may have committed after a given event (see Store.backlog). Volatile defaults added later would
  -- rewrite the table, so they are here from the start.
  txid xid8 NOT NULL DEFAULT pg_current_xact_id(),
  snapshot pg_snapshot NOT NULL DEFAULT pg_current_snapshot()
);
CREATE INDEX "events_user_id_id_idx" ON ${s}."events" (user_id, id) WHERE scope = 'user';
CREATE INDEX "events_type_id_idx" ON ${s}."events" (type, id);
CREATE INDEX "events_created_at_idx" ON ${s}."events" (created_at);
CREATE INDEX "events_txid_idx" ON ${s}."events" (txid);`,
  },
  {
    version: 2,
    name: "pruned_through",
    sql: (
      s,
    ) => `-- The greatest id ever deleted: a client resuming from below it may have missed a deleted event and
-- gets a reset, while a gap of rolled-back ids before the first row is no reason for one.
CREATE TABLE ${s}."state" (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  pruned_through bigint NOT NULL DEFAULT 0
);
INSERT INTO ${s}."state" DEFAULT VALUES;
CREATE FUNCTION ${s}."record_pruned"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- Only a delete that raises the mark writes the row, so deleting old rows stays cheap.
  UPDATE ${s}."state" SET pruned_through = d.max_id
    FROM (SELECT max(id) AS max_id FROM deleted) d WHERE d.max_id > pruned_through;
  RETURN NULL;
END
$$;
CREATE TRIGGER "events_record_pruned" AFTER DELETE ON ${s}."events"
  REFERENCING OLD TABLE AS deleted FOR EACH STATEMENT EXECUTE FUNCTION ${s}."record_pruned"();
CREATE FUNCTION ${s}."record_truncated"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE ${s}."state" SET pruned_through = GREATEST(pruned_through,
    COALESCE(pg_sequence_last_value(pg_get_serial_sequence('${s.replaceAll("'", "''")}."events"', 'id')), 0));
  RETURN NULL;
END
$$;
-- Before: TRUNCATE … RESTART IDENTITY resets the sequence, and its old value is the mark.
CREATE TRIGGER "events_record_truncated" BEFORE TRUNCATE ON ${s}."events"
  FOR EACH STATEMENT EXECUTE FUNCTION ${s}."record_truncated"();`,
  },
  {
    version: 3,
    name: "controls",
    sql: (
      s,
    ) => `-- Commands between processes (disconnectUser): read by every process with the same snapshot rules as
-- events, so a command is ordered with the events around it.
CREATE TABLE ${s}."controls" (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  kind text NOT NULL CHECK (kind IN ('disconnect')),
  user_id text NOT NULL,
  txid xid8 NOT NULL DEFAULT pg_current_xact_id(),
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX "controls_txid_idx" ON ${s}."controls" (txid);`,
  },
];

/** What {@link migrate} did or, with `dryRun`, would do. */
export interface MigrateResult {
  /** Versions applied by this call (or pending, with `dryRun`), in order. */
  applied: number[];
  /** The SQL that ran (or would run). Empty when the schema is up to date. */
  sql: string;
}

/**
 * Creates or upgrades the schema: idempotent, and safe when several processes migrate at once
 * (they queue on a transaction-scoped advisory lock; the first applies, the others find nothing to do).
 * Everything runs in one transaction: a failure leaves the database as it was.
 */
export async function migrate(
  pool: Pool,
  schema: string,
  options: { dryRun?: boolean } = {},
): Promise<MigrateResult> {
  const s = quoteIdent(schema);
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    try {
      await client.query("SELECT pg_advisory_xact_lock(hashtext($1))", [`pgrealtime.migrate:${schema}`]);
      const exists = await client.query<{ ok: boolean }>("SELECT to_regclass($1) IS NOT NULL AS ok", [
        `${s}."migrations"`,
      ]);
      const done = new Set<number>();
      if (exists.rows[0]?.ok) {
        const { rows } = await client.query<{ version: number }>(`SELECT version FROM ${s}."migrations"`);
        for (const row of rows) done.add(row.version);
      }
      const pending = MIGRATIONS.filter((m) => !done.has(m.version));
      const statements: string[] = [];
      if (!exists.rows[0]?.ok) {
        statements.push(
          `CREATE SCHEMA IF NOT EXISTS ${s};\nCREATE TABLE ${s}."migrations" (\n  version integer PRIMARY KEY,\n  name text NOT NULL,\n  applied_at timestamptz NOT NULL DEFAULT now()\n);`,
        );
      }
      for (const m of pending) {
        statements.push(
          `-- ${m.version}: ${m.name}\n${m.sql(s)}\nINSERT INTO ${s}."migrations" (version, name) VALUES (${m.version}, '${m.name}');`,
        );
      }
      const sql = statements.join("\n");
      if (!options.dryRun && sql) await client.query(sql);
      await client.query(options.dryRun ? "ROLLBACK" : "COMMIT");
      return { applied: pending.map((m) => m.version), sql };
    } catch (error) {
      await client.query("ROLLBACK").catch(() => {});
      throw error;
    }
  } finally {
    client.release();
  }
}
