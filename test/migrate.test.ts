// The migrations: compiled from src/sql/*.sql into src/sql/migrations.ts, applied in one transaction, and
// refused on a schema that a newer pgrealtime migrated.
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { OUTPUT, readMigrations, renderMigrations, SQL_DIR } from "../scripts/generate-migrations.mjs";
import { RealtimeError } from "../src/errors.js";
import { checkSchemaVersion, LATEST_MIGRATION, migrate } from "../src/migrate.js";
import { namesFor } from "../src/names.js";
import { MIGRATIONS } from "../src/sql/migrations.js";
import { databaseUrl, freshSchema } from "./support/database.js";

const pool = new pg.Pool({ connectionString: databaseUrl(), max: 3 });
afterAll(() => pool.end());

async function versions(schema: string): Promise<number[]> {
  const { rows } = await pool.query<{ version: number }>(
    `SELECT version FROM "${schema}"."migrations" ORDER BY version`,
  );
  return rows.map((row) => row.version);
}

async function tableExists(schema: string, table: string): Promise<boolean> {
  const { rows } = await pool.query<{ ok: boolean }>("SELECT to_regclass($1) IS NOT NULL AS ok", [
    `"${schema}"."${table}"`,
  ]);
  return rows[0]?.ok === true;
}

/** A schema as an older pgrealtime left it: migrated through version 2, before "controls" existed. */
async function schemaAtVersion2(): Promise<string> {
  const schema = freshSchema("mig_v2");
  await migrate(pool, namesFor(schema));
  await pool.query(
    `DROP TABLE "${schema}"."controls"; ALTER TABLE "${schema}"."state" DROP COLUMN pruned_txid;
DROP TABLE "${schema}"."activity", "${schema}"."processes";
DROP INDEX "${schema}"."events_scope_id_idx", "${schema}"."events_user_id_any_idx";
ALTER TABLE "${schema}"."events" DROP COLUMN replay_of;
CREATE INDEX "events_user_id_id_idx" ON "${schema}"."events" (user_id, id) WHERE scope = 'user';
DELETE FROM "${schema}"."migrations" WHERE version > 2`,
  );
  return schema;
}

/** What `promise` rejected with, checked to be a RealtimeError. */
async function rejection(promise: Promise<unknown>): Promise<RealtimeError> {
  const error = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(RealtimeError);
  return error as RealtimeError;
}

describe("the generated migrations module", () => {
  it("is up to date with src/sql/*.sql (run `npm run build` when this fails)", async () => {
    expect(await readFile(OUTPUT, "utf8")).toBe(renderMigrations());
  });

  it("holds every .sql file, numbered 1, 2, 3… in order", () => {
    const fromFiles = readMigrations();
    expect(MIGRATIONS.map((m) => m.version)).toEqual(fromFiles.map((_, index) => index + 1));
    expect(MIGRATIONS.map((m) => m.name).slice(0, 4)).toEqual([
      "events",
      "pruned_through",
      "controls",
      "pruned_txid",
    ]);
    expect(LATEST_MIGRATION).toBe(fromFiles.length);
  });

  it("refuses a gap in the versions, a badly named file and an unknown placeholder", async () => {
    const dir = await mkdtemp(join(tmpdir(), "pgrealtime-sql-"));
    try {
      await writeFile(join(dir, "000001_first.sql"), "SELECT 1;\n");
      await writeFile(join(dir, "000003_third.sql"), "SELECT 3;\n");
      expect(() => readMigrations(dir)).toThrow(/000003_third\.sql: expected version 2/);
      await rm(join(dir, "000003_third.sql"));
      await writeFile(join(dir, "000002_Second.sql"), "SELECT 2;\n");
      expect(() => readMigrations(dir)).toThrow(/000002_Second\.sql: a migration is named like/);
      await rm(join(dir, "000002_Second.sql"));
      await writeFile(
        join(dir, "000002_second.sql"),
        "CREATE TABLE {{schema}}.a (); DROP TABLE {{shema}}.a;\n",
      );
      expect(() => readMigrations(dir)).toThrow(/000002_second\.sql: unknown placeholder \{\{shema\}\}/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    // The real folder passes.
    expect(readMigrations(SQL_DIR).length).toBeGreaterThanOrEqual(3);
  });
});

describe("migrate", () => {
  it("creates every table on a new schema, with no placeholder left in the SQL", async () => {
    const schema = freshSchema("mig_new");
    const result = await migrate(pool, namesFor(schema));
    expect(result.applied).toEqual(MIGRATIONS.map((m) => m.version));
    expect(result.sql).not.toMatch(/\{\{|\}\}/);
    expect(await versions(schema)).toEqual(result.applied);
    for (const table of ["events", "state", "controls"]) expect(await tableExists(schema, table)).toBe(true);
  });

  it("migration 3: controls takes a disconnect command, stamped with its transaction, and nothing else", async () => {
    const schema = freshSchema("mig_controls");
    await migrate(pool, namesFor(schema));
    const client = await pool.connect();
    try {
      await client.query("BEGIN");
      const { rows } = await client.query<{ same: boolean }>(
        `INSERT INTO "${schema}"."controls" (kind, user_id) VALUES ('disconnect', 'u1')
         RETURNING txid = pg_current_xact_id() AS same`,
      );
      expect(rows[0]?.same).toBe(true);
      await client.query("COMMIT");
    } finally {
      client.release();
    }
    await expect(
      pool.query(`INSERT INTO "${schema}"."controls" (kind, user_id) VALUES ('reboot', 'u1')`),
    ).rejects.toMatchObject({ code: "23514" });
    await expect(
      pool.query(`INSERT INTO "${schema}"."controls" (kind) VALUES ('disconnect')`),
    ).rejects.toMatchObject({ code: "23502" });
    const index = await pool.query("SELECT 1 FROM pg_indexes WHERE schemaname = $1 AND indexname = $2", [
      schema,
      "controls_txid_idx",
    ]);
    expect(index.rowCount).toBe(1);
  });

  it("upgrades a schema an older version left at migration 2 by applying only what is missing", async () => {
    const schema = await schemaAtVersion2();
    await pool.query(`INSERT INTO "${schema}"."events" (type, scope) VALUES ('kept', 'global')`);
    const dry = await migrate(pool, namesFor(schema), { dryRun: true });
    expect(dry.applied).toEqual([3, 4, 5]);
    expect(dry.sql).toMatch(/^-- 3: controls\n/);
    expect(dry.sql).not.toContain(`CREATE TABLE "${schema}"."events"`);
    expect(await tableExists(schema, "controls")).toBe(false);

    expect((await migrate(pool, namesFor(schema))).applied).toEqual([3, 4, 5]);
    expect(await versions(schema)).toEqual([1, 2, 3, 4, 5]);
    const { rows } = await pool.query(`SELECT type FROM "${schema}"."events"`);
    expect(rows).toEqual([{ type: "kept" }]);
    expect(await migrate(pool, namesFor(schema))).toEqual({ applied: [], sql: "" });
  });

  it("refuses a schema a newer pgrealtime migrated, changing nothing, also in a dry run", async () => {
    const schema = await schemaAtVersion2();
    const newer = LATEST_MIGRATION + 1;
    await pool.query(`INSERT INTO "${schema}"."migrations" (version, name) VALUES ($1, 'from_the_future')`, [
      newer,
    ]);
    for (const options of [{}, { dryRun: true }]) {
      const error = await rejection(migrate(pool, namesFor(schema), options));
      expect(error.code).toBe("SCHEMA_TOO_NEW");
      expect(error.message).toBe(
        `Database schema "${schema}" is at pgrealtime migration ${newer}, but this version of pgrealtime only knows up to ${LATEST_MIGRATION}; upgrade pgrealtime (or point it at another schema)`,
      );
    }
    // Migration 3 was pending here, and still is: the refusal came before anything ran.
    expect(await tableExists(schema, "controls")).toBe(false);
    expect(await versions(schema)).toEqual([1, 2, newer]);
  });

  it("rolls everything back when a migration fails", async () => {
    const schema = await schemaAtVersion2();
    // Something of the user's in the way of migration 3.
    await pool.query(`CREATE TABLE "${schema}"."controls" (x int)`);
    await expect(migrate(pool, namesFor(schema))).rejects.toMatchObject({ code: "42P07" });
    expect(await versions(schema)).toEqual([1, 2]);
    // Nothing left half-done or locked: once the obstacle is gone, the same migration goes through.
    await pool.query(`DROP TABLE "${schema}"."controls"`);
    expect((await migrate(pool, namesFor(schema))).applied).toEqual([3, 4, 5]);
  });
});

describe("checkSchemaVersion", () => {
  it("passes on a schema migrated by this version", async () => {
    const schema = freshSchema("chk_ok");
    await migrate(pool, namesFor(schema));
    await expect(checkSchemaVersion(pool, namesFor(schema))).resolves.toBeUndefined();
  });

  it("MIGRATION_REQUIRED, naming the command, on a schema without tables or with migrations pending", async () => {
    const empty = freshSchema("chk_none");
    const none = await rejection(checkSchemaVersion(pool, namesFor(empty)));
    expect(none.code).toBe("MIGRATION_REQUIRED");
    expect(none.message).toBe(
      `Database schema "${empty}" has no pgrealtime tables; run \`npx pgrealtime migrate\` (or await realtime.migrate())`,
    );

    const old = await schemaAtVersion2();
    const pending = await rejection(checkSchemaVersion(pool, namesFor(old)));
    expect(pending.code).toBe("MIGRATION_REQUIRED");
    expect(pending.message).toContain(
      `Database schema "${old}" is at pgrealtime migration 2, but this version of pgrealtime needs ${LATEST_MIGRATION}`,
    );
    expect(pending.message).toContain("npx pgrealtime migrate");
  });

  it("SCHEMA_TOO_NEW on a schema a newer pgrealtime migrated", async () => {
    const schema = freshSchema("chk_new");
    await migrate(pool, namesFor(schema));
    await pool.query(`INSERT INTO "${schema}"."migrations" (version, name) VALUES ($1, 'from_the_future')`, [
      LATEST_MIGRATION + 1,
    ]);
    const error = await rejection(checkSchemaVersion(pool, namesFor(schema)));
    expect(error.code).toBe("SCHEMA_TOO_NEW");
    expect(error.message).toContain(`only knows up to ${LATEST_MIGRATION}`);
  });

  it("leaves a caller's open transaction usable when it fails", async () => {
    const client = await pool.connect();
    try {
      await client.query("BEGIN");
      await expect(checkSchemaVersion(client, namesFor(freshSchema("chk_tx")))).rejects.toBeInstanceOf(
        RealtimeError,
      );
      const { rows } = await client.query<{ one: number }>("SELECT 1 AS one");
      expect(rows).toEqual([{ one: 1 }]);
      await client.query("COMMIT");
    } finally {
      client.release();
    }
  });
});
