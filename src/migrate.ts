import type { ClientBase, Pool } from "pg";
import { RealtimeError } from "./errors.js";
import { type Names, quoteIdent } from "./names.js";
import { MIGRATIONS } from "./sql/migrations.js";

/** The newest migration this version of pgrealtime knows. */
export const LATEST_MIGRATION = MIGRATIONS.at(-1)?.version ?? 0;

/** What {@link migrate} did or, with `dryRun`, would do. */
export interface MigrateResult {
  /** Versions applied by this call (or pending, with `dryRun`), in order. */
  applied: number[];
  /** The SQL that ran (or would run). Empty when the schema is up to date. */
  sql: string;
}

/** A pool, or a client of one (also inside a transaction: nothing here can fail a statement). */
type Queryable = Pick<Pool, "query"> | Pick<ClientBase, "query">;

const PLACEHOLDER = /\{\{(schema|events_string|name:[a-z][a-z0-9_]*)\}\}/g;

/**
 * A migration's SQL for one installation: `{{schema}}` becomes the quoted schema, `{{name:<object>}}` the
 * quoted name of that object (renamed with the `table` option), `{{events_string}}` the qualified events
 * table escaped for a '…' string literal. One pass, so a name that looks like a placeholder stays put.
 */
function forNames(sql: string, names: Names): string {
  return sql.replace(PLACEHOLDER, (_, key: string) => {
    if (key === "schema") return quoteIdent(names.schema);
    if (key === "events_string") return names.qualified("events").replaceAll("'", "''");
    return quoteIdent(names.object(key.slice("name:".length)));
  });
}

/** The versions recorded in the installation's migrations table, ascending; `null` when there is none. */
export async function appliedVersions(db: Queryable, names: Names): Promise<number[] | null> {
  const table = names.qualified("migrations");
  // Looked up first rather than caught: an error would abort a caller's transaction.
  const exists = await db.query<{ ok: boolean }>("SELECT to_regclass($1) IS NOT NULL AS ok", [table]);
  if (!exists.rows[0]?.ok) return null;
  const { rows } = await db.query<{ version: number }>(`SELECT version FROM ${table} ORDER BY version`);
  return rows.map((row) => row.version);
}

/** Refuses a schema that a newer pgrealtime migrated: its tables may no longer be what this version expects. */
function assertNotTooNew({ schema }: Names, applied: readonly number[]): void {
  const newest = applied.at(-1) ?? 0;
  if (newest > LATEST_MIGRATION) {
    throw new RealtimeError(
      "SCHEMA_TOO_NEW",
      `Database schema "${schema}" is at pgrealtime migration ${newest}, but this version of pgrealtime only knows up to ${LATEST_MIGRATION}; upgrade pgrealtime (or point it at another schema)`,
    );
  }
}

/**
 * Checks, without changing anything, that `schema` is migrated exactly as far as this version of pgrealtime
 * expects: cheap enough for every start (two small queries, no lock).
 *
 * @param db A pool or a client; a client's open transaction is not disturbed.
 * @param names The installation (schema and table).
 * @throws RealtimeError `MIGRATION_REQUIRED` when the schema has no pgrealtime tables or misses migrations
 *   (run `npx pgrealtime migrate`), `SCHEMA_TOO_NEW` when a newer pgrealtime migrated it.
 */
export async function checkSchemaVersion(db: Queryable, names: Names): Promise<void> {
  const { schema } = names;
  const applied = await appliedVersions(db, names);
  assertNotTooNew(names, applied ?? []);
  const done = new Set(applied);
  const missing = MIGRATIONS.filter((m) => !done.has(m.version)).map((m) => m.version);
  if (missing.length === 0) return;
  const state = applied?.length
    ? `is at pgrealtime migration ${applied.at(-1)}, but this version of pgrealtime needs ${LATEST_MIGRATION}`
    : "has no pgrealtime tables";
  throw new RealtimeError(
    "MIGRATION_REQUIRED",
    `Database schema "${schema}" ${state}; run \`npx pgrealtime migrate\` (or await realtime.migrate())`,
  );
}

/**
 * Creates or upgrades the schema: idempotent, and safe when several processes migrate at once
 * (they queue on a transaction-scoped advisory lock; the first applies, the others find nothing to do).
 * Everything runs in one transaction: a failure leaves the database as it was.
 *
 * @param pool Where to migrate; one of its clients is held for the transaction.
 * @param names The installation (schema and table); the schema is created if missing.
 * @param options `dryRun`: return the SQL that would run, and change nothing (default `false`).
 * @throws RealtimeError `SCHEMA_TOO_NEW` when a newer pgrealtime migrated the schema (nothing is changed).
 */
export async function migrate(
  pool: Pool,
  names: Names,
  options: { dryRun?: boolean } = {},
): Promise<MigrateResult> {
  const { schema, table } = names;
  const s = quoteIdent(schema);
  const migrations = names.qualified("migrations");
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    try {
      await client.query("SELECT pg_advisory_xact_lock(hashtext($1))", [
        `pgrealtime.migrate:${schema}.${table}`,
      ]);
      const applied = await appliedVersions(client, names);
      assertNotTooNew(names, applied ?? []);
      const done = new Set(applied);
      const pending = MIGRATIONS.filter((m) => !done.has(m.version));
      const statements: string[] = [];
      if (applied === null) {
        statements.push(
          `CREATE SCHEMA IF NOT EXISTS ${s};\nCREATE TABLE ${migrations} (\n  version integer PRIMARY KEY,\n  name text NOT NULL,\n  applied_at timestamptz NOT NULL DEFAULT now()\n);`,
        );
      }
      for (const m of pending) {
        statements.push(
          `-- ${m.version}: ${m.name}\n${forNames(m.sql, names)}\nINSERT INTO ${migrations} (version, name) VALUES (${m.version}, '${m.name}');`,
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
