import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { toNodeHandler } from "../src/adapters/node.js";
import { createRealtime, type Realtime, RealtimeError } from "../src/index.js";
import { databaseUrl, filePool, freshSchema } from "./support/database.js";
import { migratedRealtime } from "./support/server.js";

const files = filePool();
const rowCount = (schema: string) => files.rowCount(schema);

describe("publish with storage", () => {
  let realtime: Realtime;
  let schema: string;
  beforeAll(async () => {
    ({ realtime, schema } = await migratedRealtime());
  });
  afterAll(() => realtime.close());

  it("stores the row and resolves to the stored event", async () => {
    const event = await realtime.publish({
      userId: 42,
      type: "task_complete",
      detail: { taskId: 123 },
      privateData: { secret: "s" },
    });
    expect(event).toEqual({
      id: expect.stringMatching(/^\d+$/),
      type: "task_complete",
      scope: "user",
      userId: "42",
      detail: { taskId: 123 },
      createdAt: expect.any(Date),
    });
    expect(event).not.toHaveProperty("privateData");
    const { rows } = await files.pool.query(`SELECT * FROM "${schema}"."events" WHERE id = $1`, [event.id]);
    expect(rows[0]).toMatchObject({
      type: "task_complete",
      scope: "user",
      user_id: "42",
      detail: { taskId: 123 },
      private_data: { secret: "s" },
    });
  });

  it("stores global and system events with their scope", async () => {
    const global = await realtime.publishGlobal({ type: "new_update", detail: { data: "some" } });
    const system = await realtime.publishSystem({
      type: "new_pull_request",
      detail: { prId: 456 },
      userId: 42,
    });
    const bare = await realtime.publishSystem({ type: "tick" });
    expect(global).toMatchObject({ scope: "global", userId: null });
    expect(system).toMatchObject({ scope: "system", userId: "42" });
    expect(bare).toMatchObject({ scope: "system", userId: null, detail: {} });
    expect(BigInt(system.id)).toBeGreaterThan(BigInt(global.id));
  });

  it.each([
    ["a missing userId", () => realtime.publish({ type: "t" } as never), TypeError, /userId/],
    ["a null userId", () => realtime.publish({ userId: null, type: "t" } as never), TypeError, /userId/],
    ["a reserved type", () => realtime.publishGlobal({ type: "connected" }), TypeError, /reserved/],
    ["a malformed type", () => realtime.publishGlobal({ type: "a b" }), TypeError, /type must be/],
    [
      "a BigInt in detail",
      () => realtime.publishGlobal({ type: "t", detail: { n: 1n } as never }),
      TypeError,
      /BigInt/,
    ],
    [
      "a userId given to publishGlobal",
      () => realtime.publishGlobal({ type: "t", userId: 5 } as never),
      TypeError,
      /takes no userId/,
    ],
    ["U+0000 in a userId", () => realtime.publish({ userId: "a\u0000b", type: "t" }), TypeError, /U\+0000/],
    [
      "a lone surrogate in a userId",
      () => realtime.publish({ userId: "a\ud800", type: "t" }),
      TypeError,
      /surrogate/,
    ],
    [
      "U+0000 in a detail key",
      () => realtime.publishGlobal({ type: "t", detail: { "k\u0000": 1 } }),
      TypeError,
      /key in detail/,
    ],
    [
      "a lone surrogate in a detail string",
      () => realtime.publishGlobal({ type: "t", detail: { s: "\udc00x" } }),
      TypeError,
      /detail\.s holds a lone UTF-16 surrogate/,
    ],
    [
      "a detail nested 5,000 deep",
      () => {
        let deep: Record<string, unknown> = {};
        for (let i = 0; i < 5000; i++) deep = { d: deep };
        return realtime.publishGlobal({ type: "t", detail: deep as never });
      },
      TypeError,
      /nests deeper than 100/,
    ],
    [
      "a class instance",
      () => realtime.publishGlobal({ type: "t", detail: new Map() as never }),
      TypeError,
      /Map/,
    ],
    [
      "U+0000 in privateData",
      () => realtime.publishGlobal({ type: "t", privateData: { s: "\u0000" } }),
      TypeError,
      /privateData\.s/,
    ],
  ])("refuses %s and writes nothing", async (_name, call, kind, message) => {
    const before = await rowCount(schema);
    await expect(call()).rejects.toThrow(kind);
    await expect(call()).rejects.toThrow(message);
    expect(await rowCount(schema)).toBe(before);
  });

  it("counts user id length in characters (an emoji is one), and takes publishGlobal's userId: null", async () => {
    const emoji = "😀".repeat(150);
    expect((await realtime.publish({ userId: emoji, type: "t" })).userId).toBe(emoji);
    await expect(realtime.publish({ userId: "😀".repeat(201), type: "t" })).rejects.toThrow(/got one of 201/);
    expect((await realtime.publishGlobal({ type: "t", userId: null } as never)).scope).toBe("global");
  });

  it("C17 stores details of 7,999 / 8,000 / 8,001 ASCII bytes and 9,000 bytes of 3-byte text intact", async () => {
    const received: Array<{ id: string; detail: object }> = [];
    const unsubscribe = realtime.subscribe((event) => received.push(event));
    await realtime.ready();
    const details = [
      { s: "a".repeat(7999) },
      { s: "a".repeat(8000) },
      { s: "a".repeat(8001) },
      { s: "あ".repeat(3000) },
    ];
    const published: Array<{ id: string }> = [];
    for (const detail of details) published.push(await realtime.publishGlobal({ type: "big", detail }));
    await expect.poll(() => received.filter((e) => published.some((p) => p.id === e.id)).length).toBe(4);
    for (const [i, event] of published.entries()) {
      expect(received.find((e) => e.id === event.id)?.detail).toEqual(details[i]);
    }
    unsubscribe();
  });
});

describe("publish without storage", () => {
  let realtime: Realtime;
  let schema: string;
  beforeAll(async () => {
    ({ realtime, schema } = await migratedRealtime({ storage: false }));
  });
  afterAll(() => realtime.close());

  it("notifies without a row, with a random unique id", async () => {
    const received: string[] = [];
    realtime.subscribe((event) => received.push(event.id));
    await realtime.ready();
    const a = await realtime.publishGlobal({ type: "hello", detail: { n: 1 } });
    const b = await realtime.publishGlobal({ type: "hello", detail: { n: 2 } });
    expect(a.id).not.toBe(b.id);
    await expect.poll(() => received).toEqual([a.id, b.id]);
    expect(await rowCount(schema)).toBe(0);
  });

  it("C17 refuses an event that cannot fit NOTIFY with a RangeError before sending", async () => {
    const received: string[] = [];
    realtime.subscribe((event) => received.push(event.type));
    await realtime.ready();
    await expect(realtime.publishGlobal({ type: "huge", detail: { s: "a".repeat(8001) } })).rejects.toThrow(
      RangeError,
    );
    await expect(realtime.publishGlobal({ type: "huge", detail: { s: "あ".repeat(3000) } })).rejects.toThrow(
      /NOTIFY/,
    );
    // A later event arriving proves the refused ones were never sent rather than still in flight.
    await realtime.publishGlobal({ type: "after", detail: {} });
    await expect.poll(() => received.includes("after")).toBe(true);
    expect(received).not.toContain("huge");
  });
});

describe("schema and lifecycle", () => {
  it("names the command to run when the table is missing", async () => {
    const realtime = createRealtime({ connectionString: databaseUrl(), schema: freshSchema() });
    const error = await realtime.publishGlobal({ type: "t" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RealtimeError);
    expect(error).toMatchObject({
      code: "MIGRATION_REQUIRED",
      message: expect.stringContaining("pgrealtime migrate"),
    });
    await realtime.close();
  });

  it("migrates idempotently, and concurrently from several instances", async () => {
    const schema = freshSchema();
    const instances = Array.from({ length: 4 }, () =>
      createRealtime({ connectionString: databaseUrl(), schema }),
    );
    const results = await Promise.all(instances.map((r) => r.migrate()));
    expect(results.filter((r) => r.applied.length > 0)).toHaveLength(1);
    expect(await instances[0]?.migrate()).toEqual({ applied: [], sql: "" });
    await Promise.all(instances.map((r) => r.close()));
  });

  it("dry-run returns the SQL and creates nothing", async () => {
    const schema = freshSchema();
    const realtime = createRealtime({ connectionString: databaseUrl(), schema });
    const result = await realtime.migrate({ dryRun: true });
    expect(result.sql).toContain(`CREATE TABLE "${schema}"."events"`);
    const { rows } = await files.pool.query(
      "SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = $1",
      [schema],
    );
    expect(rows[0].n).toBe(0);
    await realtime.close();
  });

  it("rejects publish after close with RealtimeError CLOSED, and closes once", async () => {
    const { realtime } = await migratedRealtime();
    await realtime.ready();
    const first = realtime.close();
    expect(realtime.close()).toBe(first);
    await first;
    expect(realtime.listenerState).toBe("closed");
    await expect(realtime.publishGlobal({ type: "t" })).rejects.toMatchObject({ code: "CLOSED" });
  });

  it("never ends a pool passed in", async () => {
    const pool = new pg.Pool({ connectionString: databaseUrl(), max: 2 });
    const realtime = createRealtime({ pool, schema: freshSchema() });
    await realtime.migrate();
    await realtime.publishGlobal({ type: "t" });
    await realtime.ready();
    await realtime.close();
    const { rows } = await pool.query("SELECT 1 AS one");
    expect(rows[0].one).toBe(1);
    await pool.end();
  });

  it("refuses privateData over maxPayloadBytes, and migrate after close rejects instead of throwing", async () => {
    const { realtime, schema } = await migratedRealtime({ maxPayloadBytes: 100 });
    await expect(realtime.publishGlobal({ type: "t", privateData: { s: "x".repeat(200) } })).rejects.toThrow(
      /privateData of "t" is \d+ bytes/,
    );
    expect(await rowCount(schema)).toBe(0);
    await realtime.close();
    const migrating = realtime.migrate();
    await expect(migrating).rejects.toMatchObject({ code: "CLOSED" });
  });

  it("takes null where an options object is optional, and validates the rest at the edge", async () => {
    const realtime = createRealtime({ connectionString: databaseUrl(), schema: freshSchema() });
    expect(realtime.scriptTag(null)).toBe('<script src="/realtime/client.js" defer></script>');
    expect(realtime.scriptTag({ lastEventId: null })).toBe(
      '<script src="/realtime/client.js" defer></script>',
    );
    expect(realtime.scriptTag({ lastEventId: "42", autoConnect: false })).toBe(
      '<script src="/realtime/client.js" defer data-last-event-id="42" data-auto-connect="false"></script>',
    );
    expect(() => realtime.scriptTag({ lastEventId: "9223372036854775808" })).toThrow(TypeError);
    expect(() => realtime.scriptTag({ lastEventId: '1" onload="x' })).toThrow(TypeError);
    expect(() => realtime.subscribe(5 as never)).toThrow(/subscribe takes a function/);
    expect(() => realtime.on("error", 5 as never)).toThrow(/takes a function/);
    expect(() => realtime.on("nope" as never, () => {})).toThrow(/unknown event/);
    expect(() => realtime.on("__proto__" as never, () => {})).toThrow(/unknown event/);
    expect(() => realtime.scriptTag({ lastEventid: "1" } as never)).toThrow(/unknown option "lastEventid"/);
    expect(() => realtime.scriptTag({ autoConnect: "false" } as never)).toThrow(/true or false/);
    expect(() => toNodeHandler(realtime, { authenticat: () => 1 } as never)).toThrow(
      /unknown option "authenticat"/,
    );
    expect(typeof toNodeHandler(realtime, null)).toBe("function");
    expect(() => toNodeHandler({} as never)).toThrow(/createRealtime/);
    await realtime.close();
  });

  it.each([
    [{ connectionString: "postgres://x", heartbeatMS: 5 }, /unknown option "heartbeatMS"/],
    [{ pool: {} }, /pool must be a pg.Pool/],
    [{ pool: "x" }, /pool must be a pg.Pool/],
    [{ pool: null }, /pool must be a pg.Pool/],
    [{ connectionString: "postgres://x", logger: {} }, /logger must have/],
    [{}, /needs a database/],
    [{ connectionString: "" }, /non-empty string/],
    [{ connectionString: "postgres://x", schema: "bad-name" }, /schema must be/],
    [{ connectionString: "postgres://x", schema: "x".repeat(51) }, /schema must be/],
    [{ connectionString: "postgres://x", basePath: "/realtime/" }, /basePath/],
    [{ connectionString: "postgres://x", basePath: 'a"b' }, /basePath/],
    [{ connectionString: "postgres://x", heartbeatMs: 1.5 }, /integer/],
    [{ connectionString: "postgres://x", heartbeatMs: 0 }, /heartbeatMs must be between/],
    [{ connectionString: "postgres://x", storage: "yes" }, /storage must be true or false/],
    [{ connectionString: "postgres://x", authenticate: "me" }, /authenticate must be a function/],
  ])("refuses the options %j", (options, message) => {
    expect(() => createRealtime(options as never)).toThrow(message);
  });
});
