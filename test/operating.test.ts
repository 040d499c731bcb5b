// Operating an installation: the processes listening (and a killed one leaving), pruning, a custom
// table name beside the default one, and an activity log that fails without touching deliveries.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { describe, expect, it, onTestFinished, vi } from "vitest";
import { createRealtime } from "../src/index.js";
import { databaseUrl, filePool, freshSchema } from "./support/database.js";
import { recordingLogger } from "./support/observe.js";
import { migratedRealtime, servedRealtime } from "./support/server.js";
import { openStream } from "./support/sse.js";

const files = filePool();
const FIXTURE = fileURLToPath(new URL("./fixtures/listening-process.ts", import.meta.url));

describe("status", () => {
  it("lists the processes listening now with their connections; a killed one leaves within two heartbeats", async () => {
    const heartbeatMs = 500;
    const { realtime, server, schema } = await servedRealtime({ heartbeatMs });
    await openStream(`${server.url}/realtime/events?user=a`);
    await openStream(`${server.url}/realtime/events`);
    const child = spawn(
      process.execPath,
      ["--import", "tsx", FIXTURE, databaseUrl(), schema, String(heartbeatMs)],
      {
        stdio: ["ignore", "pipe", "inherit"],
      },
    );
    onTestFinished(() => {
      child.kill("SIGKILL");
    });
    const [line] = (await once(child.stdout, "data")) as [Buffer];
    const pid = Number(line.toString().split(" ")[1]);

    await vi.waitFor(
      async () => {
        const { processes } = await realtime.status();
        expect(processes.map((p) => p.pid).sort()).toEqual([process.pid, pid].sort());
        expect(processes.find((p) => p.pid === process.pid)).toMatchObject({
          connections: 2,
          anonymous: 1,
          users: 1,
          listener: "listening",
        });
      },
      { timeout: 10_000, interval: 100 },
    );

    child.kill("SIGKILL");
    const killedAt = Date.now();
    await vi.waitFor(
      async () => {
        expect((await realtime.status()).processes.map((p) => p.pid)).toEqual([process.pid]);
      },
      { timeout: 10_000, interval: 50 },
    );
    // Two heartbeats of life for a record, plus one sweep of slack for the last write in flight.
    expect(Date.now() - killedAt).toBeLessThan(3 * heartbeatMs + 500);

    const status = await realtime.status();
    expect(status).toMatchObject({ schema, table: "events", migration: { applied: 5, latest: 5 } });
    expect(status.notificationQueueUsage).toBeGreaterThanOrEqual(0);
    expect(status.events.bytes).toBeGreaterThan(0);
  });

  it("removes the record of a process that closes", async () => {
    const { realtime, schema } = await migratedRealtime();
    await realtime.ready();
    const observer = createRealtime({ connectionString: databaseUrl(), schema });
    onTestFinished(() => observer.close());
    await vi.waitFor(async () => expect((await observer.status()).processes).toHaveLength(1));
    await realtime.close();
    expect((await observer.status()).processes).toEqual([]);
  });
});

describe("prune", () => {
  it("deletes old events of a type with their activity, in batches, and counts them in a dry run", async () => {
    const { realtime, schema } = await servedRealtime();
    const { pool } = files;
    const old = [];
    for (let i = 0; i < 3; i++) old.push(await realtime.publishGlobal({ type: i < 2 ? "stale" : "kept" }));
    const fresh = await realtime.publishGlobal({ type: "stale" });
    await pool.query(
      `UPDATE "${schema}"."events" SET created_at = now() - interval '2 days' WHERE id <= $1`,
      [old[2]?.id],
    );
    await pool.query(
      `INSERT INTO "${schema}"."activity" (event_id, kind) VALUES ($1, 'sent'), ($1, 'dispatched')`,
      [old[0]?.id],
    );

    expect(await realtime.prune({ olderThan: "1d", type: "stale", dryRun: true })).toEqual({
      events: 2,
      activity: 2,
    });
    expect(await realtime.events.get(old[0]?.id as string)).not.toBeNull();
    expect(await realtime.prune({ olderThan: "1d", type: "stale" })).toEqual({ events: 2, activity: 2 });
    const left = (await realtime.events.list()).events.map((e) => e.id);
    expect(left).toEqual([fresh.id, old[2]?.id]);
    expect(await realtime.prune({ olderThan: "1d" })).toEqual({ events: 1, activity: 0 });
    await expect(realtime.prune({ olderThan: "1 day" })).rejects.toThrow(/duration like "30d"/);
    await expect(realtime.prune({ olderThan: "1d", dryrun: true } as never)).rejects.toThrow(
      /unknown option "dryrun"/,
    );
  });
});

describe("the table option", () => {
  it("keeps two installations in one schema apart: tables, channel, streams", async () => {
    const schema = freshSchema("tables");
    const main = await servedRealtime({ schema });
    const audit = await servedRealtime({ schema, table: "audit_log" });
    const mainStream = await openStream(`${main.server.url}/realtime/events`);
    const auditStream = await openStream(`${audit.server.url}/realtime/events`);
    const a = await audit.realtime.publishGlobal({ type: "audited" });
    const m = await main.realtime.publishGlobal({ type: "main" });
    await auditStream.until((c) => c.events.length === 1, "the audit event");
    await mainStream.until((c) => c.events.length === 1, "the main event");
    expect(auditStream.events.map((e) => e.type)).toEqual(["audited"]);
    expect(mainStream.events.map((e) => e.type)).toEqual(["main"]);
    expect((await audit.realtime.events.list()).events.map((e) => e.id)).toEqual([a.id]);
    expect((await main.realtime.events.list()).events.map((e) => e.id)).toEqual([m.id]);
    const { pool } = files;
    const tables = await pool.query<{ name: string }>(
      "SELECT tablename AS name FROM pg_tables WHERE schemaname = $1 ORDER BY 1",
      [schema],
    );
    expect(tables.rows.map((r) => r.name)).toEqual([
      "activity",
      "audit_log",
      "audit_log_activity",
      "audit_log_controls",
      "audit_log_migrations",
      "audit_log_processes",
      "audit_log_state",
      "controls",
      "events",
      "migrations",
      "processes",
      "state",
    ]);
    expect((await audit.realtime.status()).table).toBe("audit_log");
  });

  it("is validated like the schema", () => {
    const connectionString = databaseUrl();
    expect(() => createRealtime({ connectionString, table: "bad-name" })).toThrow(/table must be a letter/);
    expect(() => createRealtime({ connectionString, table: "t".repeat(31) })).toThrow(/table must be/);
    expect(() => createRealtime({ connectionString, table: "activity" })).toThrow(
      /one of pgrealtime's own tables/,
    );
    expect(() => createRealtime({ connectionString, schema: "s".repeat(50), table: "t".repeat(20) })).toThrow(
      /over PostgreSQL's 63 bytes/,
    );
  });
});

describe("delivery activity", () => {
  it("a failing activity write is logged and counted, and deliveries go on", async () => {
    const logger = recordingLogger();
    const { realtime, server, schema } = await servedRealtime({ logger });
    const { pool } = files;
    const stream = await openStream(`${server.url}/realtime/events`);
    await pool.query(`ALTER TABLE "${schema}"."activity" RENAME TO "activity_gone"`);
    for (let i = 0; i < 3; i++) await realtime.publishGlobal({ type: "on" });
    await stream.until((c) => c.events.length === 3, "every event");
    await vi.waitFor(() => expect(realtime.stats().activity.failed).toBeGreaterThan(0), { timeout: 10_000 });
    expect(realtime.stats().activity.dropped).toBeGreaterThan(0);
    expect(logger.warns.some((w) => String(w.at(-1)).includes("writing delivery activity failed"))).toBe(
      true,
    );
    await pool.query(`ALTER TABLE "${schema}"."activity_gone" RENAME TO "activity"`);
    const after = await realtime.publishGlobal({ type: "on" });
    await stream.until((c) => c.events.length === 4, "the next event");
    await vi.waitFor(async () => expect(await realtime.events.activity(after.id)).toHaveLength(2), {
      timeout: 10_000,
    });
  });

  it("is not written with activity: false", async () => {
    const { realtime, server, schema } = await servedRealtime({ activity: false });
    const stream = await openStream(`${server.url}/realtime/events`);
    const event = await realtime.publishGlobal({ type: "quiet" });
    await stream.until((c) => c.events.length === 1, "the event");
    // close() writes whatever activity is pending: there must be none.
    await realtime.close();
    const observer = createRealtime({ connectionString: databaseUrl(), schema });
    onTestFinished(() => observer.close());
    expect(await observer.events.activity(event.id)).toEqual([]);
    expect((await observer.events.get(event.id))?.status).toBe("new");
  });
});
