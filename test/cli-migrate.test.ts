import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LATEST_MIGRATION } from "../src/migrate.js";
import { MIGRATIONS } from "../src/sql/migrations.js";
import { cli } from "./support/cli.js";
import { databaseUrl, freshSchema } from "./support/database.js";

/** Every migration this version knows, as `migrate` reports and records them. */
const VERSIONS = MIGRATIONS.map((migration) => migration.version);
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const PACKAGE = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
  version: string;
  bin: Record<string, string>;
  scripts: Record<string, string>;
};

describe.concurrent("pgrealtime migrate, and the command line around every command", () => {
  const db = new pg.Client({ connectionString: databaseUrl() });
  beforeAll(() => db.connect());
  afterAll(() => db.end());

  async function schemaExists(schema: string): Promise<boolean> {
    const { rows } = await db.query("SELECT 1 FROM pg_namespace WHERE nspname = $1", [schema]);
    return rows.length === 1;
  }

  async function appliedVersions(schema: string): Promise<number[]> {
    const { rows } = await db.query<{ version: number }>(
      `SELECT version FROM "${schema}"."migrations" ORDER BY version`,
    );
    return rows.map((row) => row.version);
  }

  it("migrate --dry-run prints the SQL and creates nothing", async () => {
    const schema = freshSchema("cli_dry");
    const run = await cli(["migrate", "--dry-run", "--schema", schema]);
    expect(run).toMatchObject({ code: 0, stderr: "" });
    expect(run.stdout).toContain("CREATE TABLE");
    expect(run.stdout).toContain(`"${schema}"."events"`);
    expect(await schemaExists(schema)).toBe(false);
  });

  it("migrate applies, then says up to date; a dry run then has nothing to print", async () => {
    const schema = freshSchema("cli_apply");
    const first = await cli(["migrate", "--schema", schema]);
    expect(first).toMatchObject({ code: 0, stderr: "" });
    expect(first.stdout).toMatch(new RegExp(`applied migrations ${VERSIONS.join(", ")}\\.`, "i"));
    const { rows } = await db.query<{ events: string | null }>("SELECT to_regclass($1)::text AS events", [
      `"${schema}"."events"`,
    ]);
    expect(rows[0]?.events).toBe(`${schema}.events`);
    expect(await appliedVersions(schema)).toEqual(VERSIONS);

    const second = await cli(["migrate", "--schema", schema]);
    expect(second).toMatchObject({ code: 0, stderr: "" });
    expect(second.stdout).toMatch(/up to date/i);
    expect(await appliedVersions(schema)).toEqual(VERSIONS);

    const dry = await cli(["migrate", "--dry-run", "--schema", schema]);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/up to date/i);
    expect(dry.stdout).not.toContain("CREATE");
  });

  it("two migrate processes started together on a new schema both succeed (advisory lock)", async () => {
    const schema = freshSchema("cli_race");
    const runs = await Promise.all([
      cli(["migrate", "--schema", schema]),
      cli(["migrate", "--schema", schema]),
    ]);
    for (const run of runs) expect(run).toMatchObject({ code: 0, stderr: "" });
    // One of them applied; the other waited on the lock and found nothing left to do.
    const outputs = runs.map((run) => run.stdout.trim().toLowerCase()).sort();
    expect(outputs[0]).toMatch(new RegExp(`^applied migrations ${VERSIONS.join(", ")}\\.`));
    expect(outputs[1]).toMatch(/^up to date/);
    expect(await appliedVersions(schema)).toEqual(VERSIONS);
  });

  it("migrate exits 1 on a schema a newer pgrealtime migrated, naming both versions, and changes nothing", async () => {
    const schema = freshSchema("cli_newer");
    expect((await cli(["migrate", "--schema", schema])).code).toBe(0);
    await db.query(`INSERT INTO "${schema}"."migrations" (version, name) VALUES (1000, 'from_the_future')`);
    const runs = await Promise.all(
      [["migrate"], ["migrate", "--dry-run"]].map((args) => cli([...args, "--schema", schema])),
    );
    for (const run of runs) {
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(
        new RegExp(
          `^pgrealtime: Database schema "${schema}" is at pgrealtime migration 1000, but this version of pgrealtime only knows up to ${LATEST_MIGRATION}; upgrade pgrealtime`,
        ),
      );
      expect(run.stdout).toBe("");
    }
    expect(await appliedVersions(schema)).toEqual([...VERSIONS, 1000]);
  });

  it("exits 2 with the usage for an unknown command", async () => {
    const run = await cli(["mgirate"]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('unknown command "mgirate"');
    expect(run.stderr).toContain("Usage: pgrealtime");
    expect(run.stdout).toBe("");
  });

  it("exits 2 with the usage when no command is given", async () => {
    const run = await cli([]);
    expect(run.code).toBe(2);
    expect(run.stdout + run.stderr).toContain("Usage: pgrealtime");
  });

  it("exits 2 naming DATABASE_URL when it is not set, and touches no database", async () => {
    const schema = freshSchema("cli_nourl");
    const run = await cli(["migrate", "--schema", schema], { DATABASE_URL: undefined });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("DATABASE_URL");
    expect(await schemaExists(schema)).toBe(false);
  });

  it("--help and -h print the usage and exit 0", async () => {
    const runs = await Promise.all(["--help", "-h"].map((flag) => cli([flag], { DATABASE_URL: undefined })));
    for (const run of runs) {
      expect(run).toMatchObject({ code: 0, stderr: "" });
      expect(run.stdout).toContain("Usage: pgrealtime");
      expect(run.stdout).toContain("migrate");
    }
  });

  it("--version and -v print the package version and exit 0, without a database", async () => {
    const runs = await Promise.all(
      ["--version", "-v"].map((flag) => cli([flag], { DATABASE_URL: undefined })),
    );
    for (const run of runs) {
      expect(run).toEqual({ code: 0, stdout: `${PACKAGE.version}\n`, stderr: "" });
    }
  });

  it("exits 2 with the usage for an unknown option, and touches no database", async () => {
    const schema = freshSchema("cli_badopt");
    const runs = await Promise.all(
      [
        ["migrate", "--dry-rnu", "--schema", schema],
        ["--frobnicate"],
        ["migrate", "-x", "--schema", schema],
      ].map((args) => cli(args)),
    );
    for (const run of runs) {
      expect(run.code).toBe(2);
      expect(run.stderr).toMatch(/^pgrealtime: Unknown option '(--dry-rnu|--frobnicate|-x)'/);
      expect(run.stderr).toContain("Usage: pgrealtime");
      expect(run.stdout).toBe("");
    }
    expect(await schemaExists(schema)).toBe(false);
  });

  it("exits 2 with the usage for an option missing its value", async () => {
    const run = await cli(["migrate", "--schema"]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("--schema");
    expect(run.stderr).toContain("Usage: pgrealtime");
    expect(run.stdout).toBe("");
  });

  it("exits 2 naming DATABASE_URL when it is not a PostgreSQL URL, without echoing it", async () => {
    const schema = freshSchema("cli_badurl");
    const values = [
      "not a url",
      "host=localhost dbname=app password=hunter2",
      "localhost:5432/app",
      "app:hunter2@localhost/app",
      "http://app:hunter2@localhost/app",
    ];
    const runs = await Promise.all(
      values.map((value) => cli(["migrate", "--schema", schema], { DATABASE_URL: value })),
    );
    for (const [index, run] of runs.entries()) {
      expect(run.code, values[index]).toBe(2);
      expect(run.stderr).toMatch(/^pgrealtime: DATABASE_URL is not a PostgreSQL connection URL/);
      expect(run.stderr).toContain("postgres://");
      expect(run.stderr).not.toContain("hunter2");
      expect(run.stdout).toBe("");
    }
    expect(await schemaExists(schema)).toBe(false);
  });

  it("accepts the postgresql:// scheme as well as postgres://", async () => {
    const url = new URL(databaseUrl());
    const run = await cli(["migrate", "--dry-run", "--schema", freshSchema("cli_scheme")], {
      DATABASE_URL: `postgresql:${url.href.slice(url.protocol.length)}`,
    });
    expect(run).toMatchObject({ code: 0, stderr: "" });
    expect(run.stdout).toContain("CREATE TABLE");
  });

  it("exits non-zero with the cause when the database cannot be reached", async () => {
    const run = await cli(["migrate", "--schema", freshSchema("cli_down")], {
      // Port 1 on localhost: refused at once, without waiting for a timeout.
      DATABASE_URL: "postgres://postgres@127.0.0.1:1/postgres",
    });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^pgrealtime: .*ECONNREFUSED.*\n$/);
    expect(run.stderr).not.toMatch(/\n\s+at /);
  });

  it("exits 2 with the usage naming the option for an invalid --schema, creating nothing", async () => {
    const run = await cli(["migrate", "--schema", "bad-name; DROP"]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^pgrealtime: schema must be /);
    expect(run.stderr).toContain("Usage: pgrealtime migrate");
    expect(await schemaExists("bad-name; DROP")).toBe(false);
  });
});

describe("the packed package", () => {
  it("builds before packing, so `npm pack` on a fresh clone ships dist/", () => {
    expect(PACKAGE.scripts.prepack).toBe("npm run build");
    expect(PACKAGE.scripts.build).toBe("node scripts/build.mjs");
  });

  it("holds the built library, CLI, migrations and browser client, and no sources or tests", async () => {
    // --ignore-scripts: the dist/ that the run's build made is packed as it is, without building it again.
    const { stdout } = await promisify(execFile)("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], {
      cwd: ROOT,
    });
    const [packed] = JSON.parse(stdout) as { files: { path: string }[] }[];
    const files = packed?.files.map((file) => file.path) ?? [];
    for (const file of [
      "package.json",
      "dist/index.js",
      "dist/index.d.ts",
      PACKAGE.bin.pgrealtime?.replace(/^\.\//, ""),
      "dist/sql/migrations.js",
      "dist/client/pgrealtime.global.js",
    ]) {
      expect(files).toContain(file);
    }
    expect(files.filter((file) => /^(src|test|scripts)\/|\.test\.|\.sql$/.test(file))).toEqual([]);
  });
});
