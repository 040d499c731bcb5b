import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, inject } from "vitest";

/** Connection string of this run's own database (see global-setup.ts). */
export function databaseUrl(): string {
  return inject("databaseUrl");
}

let created = 0;

/**
 * A schema name no other test uses, for `createRealtime({ schema })`: its own tables and, because the NOTIFY
 * channel derives from the schema, its own notifications. Lower case, so it needs no quoting anywhere.
 *
 * @param prefix A hint for whoever reads the database: a letter, then letters, digits or underscores.
 */
export function freshSchema(prefix = "t"): string {
  const hint = prefix.toLowerCase().slice(0, 20);
  if (!/^[a-z][a-z0-9_]*$/.test(hint)) {
    throw new TypeError(
      `freshSchema: the prefix must be a letter followed by letters, digits or _: ${prefix}`,
    );
  }
  // Random across the worker processes, counted within one.
  created += 1;
  return `${hint}_${randomBytes(5).toString("hex")}_${created.toString(36)}`;
}

/**
 * A small pool on the run's database for a test file's own queries, opened before its first test and
 * ended after its last. Call at the top level of the file.
 */
export function filePool(max = 2): { readonly pool: pg.Pool; rowCount(schema: string): Promise<number> } {
  let pool: pg.Pool | undefined;
  beforeAll(() => {
    pool = new pg.Pool({ connectionString: databaseUrl(), max });
  });
  afterAll(() => pool?.end());
  return {
    get pool() {
      if (!pool) throw new Error("filePool: used outside a test");
      return pool;
    },
    async rowCount(schema) {
      const { rows } = await this.pool.query(`SELECT count(*)::int AS n FROM "${schema}"."events"`);
      return rows[0].n;
    },
  };
}
