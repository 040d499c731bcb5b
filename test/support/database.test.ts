import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { databaseUrl, freshSchema } from "./database.js";

describe("the run's database", () => {
  const client = new pg.Client({ connectionString: databaseUrl() });
  beforeAll(() => client.connect());
  afterAll(() => client.end());

  it("is a database created for this run", async () => {
    const { rows } = await client.query<{ name: string }>("SELECT current_database() AS name");
    const match = /^pgrealtime_test_(\d+)_[0-9a-f]{8}$/.exec(rows[0]?.name ?? "");
    expect(match, rows[0]?.name).not.toBeNull();
    const startedAt = Number(match?.[1]);
    expect(startedAt).toBeLessThanOrEqual(Date.now());
    expect(Date.now() - startedAt).toBeLessThan(60 * 60 * 1000);
  });

  it("holds nothing outside the schemas tests create", async () => {
    const { rows } = await client.query(
      "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'",
    );
    expect(rows).toEqual([]);
  });
});

describe("freshSchema", () => {
  it("returns a different plain identifier on each call", async () => {
    const a = freshSchema();
    const b = freshSchema("Chat");
    expect(a).not.toBe(b);
    expect(b.startsWith("chat_")).toBe(true);
    for (const name of [a, b, freshSchema("a".repeat(100))]) {
      expect(name).toMatch(/^[a-z][a-z0-9_]*$/);
      expect(name.length).toBeLessThanOrEqual(40);
    }
    expect(() => freshSchema("1st")).toThrow(TypeError);
  });

  it("gives schemas PostgreSQL accepts unquoted and that do not share tables", async () => {
    const client = new pg.Client({ connectionString: databaseUrl() });
    await client.connect();
    const [a, b] = [freshSchema("iso"), freshSchema("iso")];
    try {
      const quoted = await client.query<{ same: boolean }>("SELECT quote_ident($1) = $1 AS same", [a]);
      expect(quoted.rows[0]?.same).toBe(true);
      await client.query(
        `CREATE SCHEMA ${a}; CREATE TABLE ${a}.items (n int); INSERT INTO ${a}.items VALUES (1)`,
      );
      await client.query(`CREATE SCHEMA ${b}; CREATE TABLE ${b}.items (n int)`);
      expect((await client.query(`SELECT n FROM ${a}.items`)).rows).toEqual([{ n: 1 }]);
      expect((await client.query(`SELECT n FROM ${b}.items`)).rows).toEqual([]);
    } finally {
      await client.query(`DROP SCHEMA IF EXISTS ${a} CASCADE; DROP SCHEMA IF EXISTS ${b} CASCADE`);
      await client.end();
    }
  });
});
