import { spawn } from "node:child_process";
import { describe, expect, it, type TestContext } from "vitest";
import { CLI, cli, startCli } from "./support/cli.js";
import { databaseUrl, filePool } from "./support/database.js";
import { migratedRealtime } from "./support/server.js";

const files = filePool();

// Concurrent tests: each registers its clean-up on its own context, never the global onTestFinished.
type Finished = TestContext["onTestFinished"];

async function migratedSchema(
  onTestFinished: Finished,
  options: { activity?: boolean; table?: string } = {},
) {
  const { realtime, schema } = await migratedRealtime({ activity: false, ...options });
  onTestFinished(() => realtime.close());
  return { realtime, schema };
}

/** Runs the CLI and expects it to succeed without a word on stderr; resolves to its stdout. */
async function ok(args: string[]): Promise<string> {
  const run = await cli(args);
  expect(run, args.join(" ")).toMatchObject({ code: 0, stderr: "" });
  return run.stdout;
}

describe.concurrent("pgrealtime publish, events, show, replay", () => {
  it("publishes each scope, lists them newest first with filters and pages, as a table or JSON", async ({
    onTestFinished,
  }) => {
    const { schema } = await migratedSchema(onTestFinished);
    const s = ["--schema", schema];
    const [user, global, system] = await Promise.all([
      ok(["publish", ...s, "--type", "note", "--user", "42", "--detail", '{"n":1}']),
      ok(["publish", ...s, "--type", "news", "--global"]),
      ok(["publish", ...s, "--type", "audit", "--system", "--user", "7", "--private", '{"ip":"10.0.0.1"}']),
    ]);
    const ids = [user, global, system].map((out) => out.trim());
    for (const id of ids) expect(id).toMatch(/^[0-9]+$/);
    const newestFirst = [...ids].sort((a, b) => Number(b) - Number(a));

    const [all, firstPage, filtered, json] = await Promise.all([
      ok(["events", ...s]),
      ok(["events", ...s, "--limit", "2"]),
      ok(["events", ...s, "--scope", "system", "--user", "7", "--status", "new"]),
      ok(["events", ...s, "--json", "--type", "audit"]),
    ]);
    const lines = all.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^ID +CREATED +SCOPE +USER +TYPE +STATUS +REPLAY-OF$/);
    expect(lines.slice(1, -1).map((line) => line.split(/ +/)[0])).toEqual(newestFirst);
    expect(lines.at(-1)).toBe("(end)");
    // Aligned: every row's columns start where the header's do.
    const typeColumn = lines[0]?.indexOf("TYPE");
    for (const line of lines.slice(1, -1)) expect(line[(typeColumn ?? 0) - 1]).toBe(" ");
    expect(lines.find((line) => line.startsWith(`${ids[0]} `))).toMatch(/ user +42 +note +new +-$/);

    const next = firstPage.trimEnd().split("\n").at(-1) ?? "";
    expect(next).toBe(`next page: pgrealtime events --limit 2 --schema ${schema} --before ${newestFirst[1]}`);
    const secondPage = await ok(next.replace("next page: pgrealtime ", "").split(" "));
    expect(secondPage.split("\n").slice(1, -2)).toEqual([
      expect.stringMatching(new RegExp(`^${newestFirst[2]} `)),
    ]);

    expect(filtered.split("\n").slice(1, -2)).toEqual([expect.stringMatching(/ system +7 +audit +new +-$/)]);
    expect(JSON.parse(json)).toMatchObject({
      id: ids[2],
      type: "audit",
      scope: "system",
      userId: "7",
      privateData: { ip: "10.0.0.1" },
      replayOf: null,
      status: "new",
    });
  });

  it("shows one event with its private data and activity; replays it; unknown ids exit 1", async ({
    onTestFinished,
  }) => {
    const { realtime, schema } = await migratedSchema(onTestFinished, { activity: true });
    const s = ["--schema", schema];
    const received = new Promise((resolve) => realtime.subscribe(resolve));
    await realtime.ready();
    const original = await realtime.publish({
      userId: 42,
      type: "task_complete",
      detail: { taskId: 123 },
      privateData: { reason: "batch" },
    });
    await received;
    // Closing writes the pending activity batch (dispatched, by this process).
    await realtime.close();

    const replayed = await ok(["replay", ...s, original.id]);
    const replayId = /^replayed ([0-9]+) as ([0-9]+)\n$/.exec(replayed);
    expect(replayId?.[1]).toBe(original.id);
    const [shown, json, listed] = await Promise.all([
      ok(["show", ...s, original.id]),
      ok(["show", ...s, original.id, "--json"]),
      ok(["events", ...s, "--limit", "1", "--before", String(Number(replayId?.[2]) + 1)]),
    ]);
    // After the shows: it adds to the original's activity.
    const replayJson = await ok(["replay", ...s, original.id, replayId?.[2] ?? "", "--json"]);
    expect(shown).toMatch(new RegExp(`^id +${original.id}\ntype +task_complete\nscope +user\nuser +42\n`));
    expect(shown).toContain('detail:\n  {\n    "taskId": 123\n  }\n');
    expect(shown).toContain('private data:\n  {\n    "reason": "batch"\n  }\n');
    expect(shown).toMatch(/activity:\n.* dispatched +process \S+, written to 0 stream\(s\)\n/);
    expect(shown).toMatch(new RegExp(`replayed +as event ${replayId?.[2]}\n`));
    const stored = JSON.parse(json);
    expect(stored).toMatchObject({ id: original.id, privateData: { reason: "batch" }, replayOf: null });
    expect(stored.activity.map((entry: { kind: string }) => entry.kind)).toEqual(["dispatched", "replayed"]);
    const again = replayJson
      .trimEnd()
      .split("\n")
      .map((line) => JSON.parse(line));
    expect(again.map((event: { replayOf: string }) => event.replayOf)).toEqual([original.id, replayId?.[2]]);
    expect(again[0]).not.toHaveProperty("privateData");
    expect(listed).toMatch(new RegExp(`\n${replayId?.[2]} .* task_complete +\\S+ +${original.id}\n`));

    const [unknownShow, unknownReplay] = await Promise.all([
      cli(["show", ...s, "999999"]),
      cli(["replay", ...s, original.id, "999999"]),
    ]);
    expect(unknownShow).toEqual({
      code: 1,
      stdout: "",
      stderr: "pgrealtime: no event 999999 in this table\n",
    });
    expect(unknownReplay.code).toBe(1);
    expect(unknownReplay.stdout).toBe("");
    expect(unknownReplay.stderr).toMatch(/^pgrealtime: .*999999.*\n$/);
    // All or nothing: the known id was not replayed either.
    expect((await ok(["events", ...s, "--json"])).trimEnd().split("\n")).toHaveLength(4);
  });
});

describe.concurrent("pgrealtime prune, status, --table, EPIPE", () => {
  it("prune counts with --dry-run, then deletes only what is older (and of --type)", async ({
    onTestFinished,
  }) => {
    const { realtime, schema } = await migratedSchema(onTestFinished);
    const old = await Promise.all(["a", "a", "b"].map((type) => realtime.publishGlobal({ type })));
    const fresh = await realtime.publishGlobal({ type: "a" });
    await files.pool.query(
      `UPDATE "${schema}"."events" SET created_at = now() - interval '2 days' WHERE id = ANY($1)`,
      [old.map((event) => event.id)],
    );
    const s = ["--schema", schema, "--older-than", "1d"];
    expect(await ok(["prune", ...s, "--dry-run"])).toBe(
      "Would delete 3 event(s) and 0 activity entries (dry run: nothing deleted).\n",
    );
    expect(await files.rowCount(schema)).toBe(4);
    expect(await ok(["prune", ...s, "--type", "b"])).toBe("Deleted 1 event(s) and 0 activity entries.\n");
    expect(await ok(["prune", ...s])).toBe("Deleted 2 event(s) and 0 activity entries.\n");
    const { rows } = await files.pool.query(`SELECT id::text FROM "${schema}"."events"`);
    expect(rows).toEqual([{ id: fresh.id }]);
  });

  it("status shows the probe, migration, table, events, processes and queue; exit 1 when the probe fails", async ({
    onTestFinished,
  }) => {
    const { realtime, schema } = await migratedSchema(onTestFinished);
    await realtime.ready();
    const first = await realtime.publishGlobal({ type: "a" });
    const last = await realtime.publishGlobal({ type: "b" });
    const [human, json] = await Promise.all([
      ok(["status", "--schema", schema]),
      ok(["status", "--schema", schema, "--json"]),
    ]);
    expect(human).toMatch(/^listener +ok, listening after [0-9]+ ms\nmigration +[0-9]+ \(up to date\)\n/);
    expect(human).toMatch(
      new RegExp(`\ntable +${schema}\\.events: ~[0-9]+ rows \\(estimate\\), [0-9.]+ KiB with indexes\n`),
    );
    expect(human).toContain(`\noldest        ${first.id} at ${first.createdAt.toISOString()}\n`);
    expect(human).toContain(`\nnewest        ${last.id} at ${last.createdAt.toISOString()}\n`);
    expect(human).toMatch(/\nnotify queue +0\.00% used\n/);
    // This test's own instance is listening, so at least it is recorded.
    expect(human).toMatch(/\nprocesses +[1-9][0-9]* listening\n +PROCESS +STARTED/);
    const status = JSON.parse(json);
    expect(status.listener).toEqual({ ok: true, ms: expect.any(Number), state: "listening" });
    expect(status.migration.applied).toBe(status.migration.latest);
    expect(status.events.newest).toEqual({ id: last.id, createdAt: last.createdAt.toISOString() });

    // A schema a migration behind: status still reads it, and the probe (ready()) refuses it.
    const { rows } = await files.pool.query(
      `DELETE FROM "${schema}"."migrations" WHERE version = (SELECT max(version) FROM "${schema}"."migrations") RETURNING version`,
    );
    const behind = await cli(["status", "--schema", schema]);
    expect(behind.code).toBe(1);
    expect(behind.stdout).toMatch(/^listener +FAILED after [0-9]+ ms/);
    expect(behind.stdout).toContain(
      `migration     ${rows[0].version - 1} of ${rows[0].version}: run pgrealtime migrate`,
    );
    expect(behind.stderr).toMatch(
      /^pgrealtime: the listener probe failed: .*run `npx pgrealtime migrate`.*\n$/,
    );
  });

  it("--table: migrate, publish, listen and events on a table of another name", async ({
    onTestFinished,
  }) => {
    const { schema } = await migratedSchema(onTestFinished);
    const t = ["--schema", schema, "--table", "audit_log"];
    expect(await ok(["migrate", ...t])).toMatch(/^Applied migrations /);
    const listen = startCli(["listen", ...t, "--json"]);
    onTestFinished(() => {
      listen.child.kill("SIGKILL");
    });
    await listen.waitFor(new RegExp(`listening to ${schema}\\.audit_log `), "stderr");
    const id = (await ok(["publish", ...t, "--type", "login", "--user", "9"])).trim();
    const [line] = await listen.waitFor(/^.*\n/);
    expect(JSON.parse(line)).toMatchObject({ id, type: "login", userId: "9" });
    const [other, own] = await Promise.all([
      ok(["events", "--schema", schema]),
      ok(["events", ...t, "--json"]),
    ]);
    expect(other).toBe("No events.\n");
    expect(JSON.parse(own)).toMatchObject({ id, type: "login" });
    listen.child.kill("SIGINT");
    expect((await listen.exited).code).toBe(0);
  });

  it("`events | head -1` exits 0 without a word when head stops reading (EPIPE)", async ({
    onTestFinished,
  }) => {
    const { schema } = await migratedSchema(onTestFinished);
    // 1000 rows, about 80 KiB of table: more than a pipe holds, so the writes outlast head.
    await files.pool.query(
      `INSERT INTO "${schema}"."events" (type, scope, user_id) SELECT 'bulk', 'user', 'u' || n FROM generate_series(1, 1000) AS n`,
    );
    const shell = spawn(
      "bash",
      [
        "-c",
        'set -o pipefail; "$0" "$1" events --schema "$2" --limit 1000 | head -1',
        process.execPath,
        CLI,
        schema,
      ],
      { env: { ...process.env, DATABASE_URL: databaseUrl() }, stdio: ["ignore", "pipe", "pipe"] },
    );
    let stdout = "";
    let stderr = "";
    shell.stdout.setEncoding("utf8").on("data", (text: string) => {
      stdout += text;
    });
    shell.stderr.setEncoding("utf8").on("data", (text: string) => {
      stderr += text;
    });
    const code = await new Promise((resolve) => shell.on("close", resolve));
    expect({ code, stdout, stderr }).toEqual({
      code: 0,
      stdout: expect.stringMatching(/^ID +CREATED +SCOPE +USER +TYPE +STATUS +REPLAY-OF\n$/),
      stderr: "",
    });
  });
});
