// Attacks on the CLI: its LISTEN session killed under it, names built to break out of an identifier,
// a pipe closed while it prints.
import { spawn } from "node:child_process";
import { describe, expect, it, onTestFinished } from "vitest";
import { CLI, cli, startCli } from "./support/cli.js";
import { databaseUrl, filePool } from "./support/database.js";
import { migratedRealtime } from "./support/server.js";

const files = filePool();
const LISTENING = /^pgrealtime: listening to (\S+) \(Ctrl-C to stop\)\n/;

describe("pgrealtime CLI under attack", () => {
  it("attack: listen keeps printing after its LISTEN session is terminated (pg_terminate_backend)", async () => {
    const { realtime, schema } = await migratedRealtime();
    onTestFinished(() => realtime.close());
    const listen = startCli(["listen", "--json", "--schema", schema]);
    onTestFinished(() => {
      listen.child.kill("SIGKILL");
    });
    await listen.waitFor(LISTENING, "stderr");
    const before = await realtime.publishGlobal({ type: "before" });
    await listen.waitFor(new RegExp(`"id":"${before.id}"`));
    const { rows } = await files.pool.query<{ n: number }>(
      "SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE application_name = $1",
      [`pgrealtime listener ${schema}_events`],
    );
    expect(rows[0]?.n).toBeGreaterThanOrEqual(1);
    // Published until one shows: the listener comes back on its own, and catches up from the table.
    const after = await realtime.publishGlobal({ type: "after" });
    await listen.waitFor(new RegExp(`"id":"${after.id}"`));
    expect(listen.child.exitCode).toBeNull();
    listen.child.kill("SIGINT");
    expect((await listen.exited).code).toBe(0);
  });

  it("attack: --schema and --table that try to break out of an identifier are refused with exit 2", async () => {
    for (const args of [
      ["--schema", 'x"; DROP TABLE pg_class; --'],
      ["--table", "events; DROP SCHEMA public"],
      ["--table", "a".repeat(31)],
      ["--schema", ""],
    ]) {
      const run = await cli(["events", ...args]);
      expect(run.code, `${args.join(" ")}: ${run.stderr}`).toBe(2);
      expect(run.stderr).toMatch(/^pgrealtime: /);
      expect(run.stderr).not.toMatch(/\n\s+at /);
    }
  });

  it("attack: events piped into a reader that closes at once exits 0 in silence", async () => {
    const { realtime, schema } = await migratedRealtime();
    onTestFinished(() => realtime.close());
    // Far more than a pipe's buffer (64 KiB), so the CLI is still writing when the reader goes.
    const pad = "x".repeat(500);
    await Promise.all(
      Array.from({ length: 1000 }, (_, i) => realtime.publishGlobal({ type: "many", detail: { i, pad } })),
    );
    const child = spawn(process.execPath, [CLI, "events", "--json", "--limit", "1000", "--schema", schema], {
      env: { ...process.env, DATABASE_URL: databaseUrl() },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (text: string) => {
      stderr += text;
    });
    // Like `| head -1`: read the first chunk, then close the pipe.
    child.stdout.once("data", () => child.stdout.destroy());
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    expect(code).toBe(0);
    expect(stderr).toBe("");
  });
});
