import pg from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Realtime, RealtimeEvent } from "../src/index.js";
import { databaseUrl } from "./support/database.js";
import { ResumingClient } from "./support/resuming.js";
import { migratedRealtime, serveRealtime } from "./support/server.js";
import { cursorPattern, SseClient } from "./support/sse.js";
import { stallingReader } from "./support/stalling.js";

type Server = Awaited<ReturnType<typeof serveRealtime>>;

let db: pg.Pool;
beforeAll(() => {
  db = new pg.Pool({ connectionString: databaseUrl(), max: 4 });
});
afterAll(() => db.end());

const ids = (events: Array<{ id: string }>) => events.map((e) => e.id);

/** Opens a stream resuming from `lastEventId` and returns it once `connected` arrived. */
async function resumeAt(server: Server, lastEventId: string, user = "alice") {
  const stream = await SseClient.open(`${server.url}/realtime/events?user=${user}`, {
    headers: { "Last-Event-ID": lastEventId },
  });
  await stream.next("connected");
  return stream;
}

describe("resume", () => {
  let realtime: Realtime;
  let server: Server;
  let schema: string;
  const clients: Array<{ close(): void }> = [];
  beforeAll(async () => {
    ({ realtime, schema } = await migratedRealtime({ maxReplay: 2000 }));
    server = await serveRealtime(realtime);
  });
  afterEach(() => {
    for (const client of clients.splice(0)) client.close();
  });
  afterAll(async () => {
    await realtime.close();
    await server.close();
  });

  async function publishMix(count: number): Promise<RealtimeEvent[]> {
    const forAlice: RealtimeEvent[] = [];
    for (let i = 0; i < count; i++) {
      forAlice.push(
        i % 2 === 0
          ? await realtime.publish({ userId: "alice", type: "mine", detail: { i } })
          : await realtime.publishGlobal({ type: "everyone", detail: { i } }),
      );
      // Interleaved events alice may not see must never be replayed to her.
      await realtime.publish({ userId: "bob", type: "not_mine", detail: { i } });
      await realtime.publishSystem({ type: "internal", detail: { i } });
    }
    return forAlice;
  }

  it("C09 replays 250 stored events once, in order, from id 0 and from before the first id, then goes live", async () => {
    const before = await realtime.currentEventId();
    const published = await publishMix(250);
    for (const from of [before, String(BigInt(published[0]?.id ?? "1") - 1n)]) {
      const client = new ResumingClient(`${server.url}/realtime/events?user=alice`, from);
      clients.push(client);
      await client.connect();
      await client.until((events) => events.length >= published.length, "the replayed events");
      expect(ids(client.dispatched)).toEqual(ids(published));
      expect(client.received).toHaveLength(published.length);
      expect(client.resets).toEqual([]);
      const live = await realtime.publish({ userId: "alice", type: "live" });
      await client.until((events) => events.at(-1)?.id === live.id, "the live event");
      expect(client.received).toHaveLength(published.length + 1);
      client.close();
      // The next client, resuming from before the first, must get this one as well.
      published.push(live);
    }
    expect(published).toHaveLength(252);
  });

  it("replays only what came after the last id seen", async () => {
    const published = await publishMix(20);
    const stream = await resumeAt(server, published[9]?.id ?? "");
    clients.push(stream);
    await stream.waitForEvents(10);
    expect(ids(stream.events)).toEqual(ids(published.slice(10)));
  });

  it("C08 sends reset before anything else for an id past the newest event, and then delivers live events", async () => {
    const newest = BigInt(await realtime.currentEventId());
    const stream = await resumeAt(server, String(newest + 1000n));
    clients.push(stream);
    await stream.next("reset");
    expect(stream.messages.map((m) => m.event)).toEqual(["connected", "reset"]);
    expect(JSON.parse(stream.messages[1]?.data ?? "")).toEqual({ reason: "unknown-id" });
    // The reset moves the client's cursor to the newest event, so its next reconnect resumes from there.
    expect(stream.messages[1]?.id).toMatch(cursorPattern(String(newest)));
    const live = await realtime.publishGlobal({ type: "after_reset" });
    await stream.waitForEvents(1);
    expect(ids(stream.events)).toEqual([live.id]);
  });

  it("C09 C11 replays from 0 when the ids before the first row were rolled back, not pruned", async () => {
    const { realtime: fresh } = await migratedRealtime();
    const freshServer = await serveRealtime(fresh);
    const cursor = await fresh.currentEventId();
    expect(cursor).toBe("0");
    const client = await db.connect();
    try {
      for (let i = 0; i < 3; i++) {
        await client.query("BEGIN");
        await fresh.publishGlobal({ type: "rolled_back" }, { client });
        await client.query("ROLLBACK");
      }
    } finally {
      client.release();
    }
    const first = await fresh.publishGlobal({ type: "first", detail: {} });
    expect(BigInt(first.id)).toBeGreaterThan(3n);
    for (const from of [cursor, "2"]) {
      const stream = await resumeAt(freshServer, from);
      await stream.waitForEvents(1);
      expect(ids(stream.events)).toEqual([first.id]);
      expect(stream.messages.some((m) => m.event === "reset")).toBe(false);
      stream.close();
    }
    await fresh.close();
    await freshServer.close();
  });

  it("C08 sends reset after TRUNCATE for any older cursor", async () => {
    const { realtime: truncated, schema: truncatedSchema } = await migratedRealtime();
    const truncatedServer = await serveRealtime(truncated);
    const [a] = [await truncated.publishGlobal({ type: "a" }), await truncated.publishGlobal({ type: "b" })];
    await db.query(`TRUNCATE "${truncatedSchema}"."events"`);
    const stream = await resumeAt(truncatedServer, a?.id ?? "");
    expect(JSON.parse((await stream.next("reset")).data)).toEqual({ reason: "pruned" });
    stream.close();
    await truncated.close();
    await truncatedServer.close();
  });

  it("sends no duplicate at the seam while this process is still behind on notifications", async () => {
    // The live path of this process is held at a gate event (onReceive awaits), so the notifications of
    // everything after it arrive only once the replay, which starts after the gate, is over.
    let open!: () => void;
    const gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    const { realtime: behind } = await migratedRealtime({
      onReceive: async (event) => {
        if (event.type === "gate") await gate;
        return event;
      },
    });
    const behindServer = await serveRealtime(behind);
    await behind.ready();
    const gateEvent = await behind.publishGlobal({ type: "gate" });
    const backlog = [];
    for (let i = 0; i < 300; i++) backlog.push(await behind.publishGlobal({ type: "bulk", detail: { i } }));
    const resumed = new ResumingClient(`${behindServer.url}/realtime/events`, gateEvent.id);
    await resumed.connect();
    await resumed.until((events) => events.length >= 300, "the replayed backlog");
    open();
    const fence = await behind.publishGlobal({ type: "fence" });
    await resumed.until((events) => events.some((e) => e.id === fence.id), "the fence");
    expect(ids(resumed.dispatched)).toEqual([...ids(backlog), fence.id]);
    expect(resumed.received).toHaveLength(301);
    resumed.close();
    await behind.close();
    await behindServer.close();
  });

  it("does not re-send the rest of the cursor's own transaction", async () => {
    const start = await realtime.publishGlobal({ type: "before_tx" });
    const client = await db.connect();
    const inTx = [];
    try {
      await client.query("BEGIN");
      for (let i = 0; i < 30; i++)
        inTx.push(await realtime.publishGlobal({ type: "in_tx", detail: { i } }, { client }));
      await client.query("COMMIT");
    } finally {
      client.release();
    }
    const last = inTx.at(-1)?.id ?? "";
    const fromLast = await resumeAt(server, last);
    clients.push(fromLast);
    const fence = await realtime.publishGlobal({ type: "fence" });
    await fromLast.until((c) => c.events.some((e) => e.id === fence.id), "the fence");
    expect(ids(fromLast.events)).toEqual([fence.id]);
    // From the middle of the transaction: only what follows it.
    const fromMiddle = await resumeAt(server, inTx[14]?.id ?? "");
    clients.push(fromMiddle);
    await fromMiddle.until((c) => c.events.some((e) => e.id === fence.id), "the fence");
    expect(ids(fromMiddle.events)).toEqual([...ids(inTx.slice(15)), fence.id]);
    expect(start.id).toBeTruthy();
  });

  it("drops readers that stall during a replay without holding a database connection", async () => {
    const pool = new pg.Pool({ connectionString: databaseUrl(), max: 2 });
    const { realtime: small, schema: smallSchema } = await migratedRealtime({
      pool,
      connectionString: undefined,
      heartbeatMs: 300,
      maxBufferedBytes: 64 * 1024,
    });
    const smallServer = await serveRealtime(small);
    await db.query(
      `INSERT INTO "${smallSchema}"."events" (type, scope, detail)
       SELECT 'bulk', 'global', jsonb_build_object('s', repeat('x', 4000)) FROM generate_series(1, 3000)`,
    );
    const readers = await Promise.all(
      Array.from({ length: 5 }, () => stallingReader(smallServer.url, null, { "Last-Event-ID": "0" })),
    );
    for (const reader of readers) reader.pause();
    await expect.poll(() => small.connectionCount).toBe(5);
    // Five stalled replays and a pool of two: publishing must still go through.
    const event = await small.publishGlobal({ type: "still_publishing" });
    expect(event.id).toMatch(/^\d+$/);
    // No byte taken for twice heartbeatMs: each is dropped as a slow reader.
    await expect.poll(() => small.connectionCount, { timeout: 10_000 }).toBe(0);
    for (const reader of readers) reader.destroy();
    await small.close();
    await smallServer.close();
    await pool.end();
  });

  it("C08 sends reset for an id whose event was pruned", async () => {
    const [first] = await publishMix(3);
    await db.query(`DELETE FROM "${schema}"."events" WHERE id <= $1`, [first?.id]);
    const stream = await resumeAt(server, String(BigInt(first?.id ?? "1") - 1n));
    // The cursor after the deleted event is fine: nothing deleted lies above it.
    const after = await resumeAt(server, first?.id ?? "");
    clients.push(after);
    await after.waitForEvents(2);
    expect(after.messages.some((m) => m.event === "reset")).toBe(false);
    clients.push(stream);
    expect(JSON.parse((await stream.next("reset")).data)).toEqual({ reason: "pruned" });
    expect(stream.events).toEqual([]);
  });

  it.each(["abc", "-1", "1e3", "12.5", " 1 OR 1=1", "99999999999999999999", "9223372036854775808"])(
    "C08 resets on the malformed id %j without passing it to SQL",
    async (bad) => {
      const stream = await SseClient.open(
        `${server.url}/realtime/events?user=alice&lastEventId=${encodeURIComponent(bad)}`,
      );
      clients.push(stream);
      expect(JSON.parse((await stream.next("reset")).data)).toEqual({ reason: "malformed-id" });
    },
  );

  it("resets instead of replaying a backlog over maxReplay", async () => {
    const { realtime: small } = await migratedRealtime({ maxReplay: 10 });
    const smallServer = await serveRealtime(small);
    const events = [];
    for (let i = 0; i < 12; i++) events.push(await small.publishGlobal({ type: "e", detail: { i } }));
    const over = await resumeAt(smallServer, events[0]?.id ?? "");
    expect(JSON.parse((await over.next("reset")).data)).toEqual({ reason: "backlog-too-large" });
    const within = await resumeAt(smallServer, events[1]?.id ?? "");
    await within.waitForEvents(10);
    expect(ids(within.events)).toEqual(ids(events.slice(2)));
    expect(within.messages.some((m) => m.event === "reset")).toBe(false);
    over.close();
    within.close();
    await small.close();
    await smallServer.close();
  });

  it("has no gap and no duplicate at the seam between replay and live", async () => {
    const backlog = [];
    for (let i = 0; i < 1200; i++)
      backlog.push(await realtime.publishGlobal({ type: "backlog", detail: { i } }));
    const client = new ResumingClient(`${server.url}/realtime/events?user=alice`, backlog[0]?.id ?? null);
    clients.push(client);
    // Publish while the replay pages through the backlog.
    const connecting = client.connect();
    const live = [];
    for (let i = 0; i < 60; i++) live.push(await realtime.publishGlobal({ type: "live", detail: { i } }));
    await connecting;
    const expected = [...ids(backlog.slice(1)), ...ids(live)];
    await client.until((events) => events.length >= expected.length, "every event");
    expect(ids(client.dispatched).sort()).toEqual([...expected].sort());
    // Sequential publishers: commit order is id order, so the stream is in id order too.
    expect(ids(client.dispatched)).toEqual(expected);
    expect(client.received).toHaveLength(expected.length);
  });

  it("delivers an event whose lower id committed after a higher one was delivered", async () => {
    const watcher = new ResumingClient(`${server.url}/realtime/events?user=alice`);
    const leaver = new ResumingClient(`${server.url}/realtime/events?user=alice`);
    clients.push(watcher, leaver);
    await Promise.all([watcher.connect(), leaver.connect()]);
    const slow = await db.connect();
    const fast = await db.connect();
    try {
      await slow.query("BEGIN");
      const lower = await realtime.publishGlobal({ type: "slow_tx", detail: {} }, { client: slow });
      await fast.query("BEGIN");
      const higher = await realtime.publishGlobal({ type: "fast_tx", detail: {} }, { client: fast });
      await fast.query("COMMIT");
      expect(BigInt(lower.id)).toBeLessThan(BigInt(higher.id));
      await leaver.until((events) => events.some((e) => e.id === higher.id), "the higher id");
      // The leaver goes away having seen only the higher id; the lower one commits while it is gone.
      leaver.close();
      await slow.query("COMMIT");
      await watcher.until((events) => events.length === 2, "both events live");
      // Live delivery follows commit order.
      expect(ids(watcher.dispatched)).toEqual([higher.id, lower.id]);

      const back = new ResumingClient(`${server.url}/realtime/events?user=alice`, higher.id);
      clients.push(back);
      await back.connect();
      await back.until((events) => events.length === 1, "the late commit");
      expect(ids(back.dispatched)).toEqual([lower.id]);

      // Resuming from the lower id (the last one the watcher saw) re-sends the concurrent higher one
      // at most: the client drops it, and nothing is lost.
      watcher.drop();
      await expect.poll(() => watcher.connects).toBe(2);
      const fence = await realtime.publishGlobal({ type: "fence" });
      await watcher.until((events) => events.at(-1)?.id === fence.id, "the fence");
      expect(ids(watcher.dispatched)).toEqual([higher.id, lower.id, fence.id]);
    } finally {
      await slow.query("ROLLBACK").catch(() => {});
      await fast.query("ROLLBACK").catch(() => {});
      slow.release();
      fast.release();
    }
  });

  it("streams a backlog of 100,000 rows in pages", { timeout: 120_000 }, async () => {
    const { realtime: big, schema: bigSchema } = await migratedRealtime({ maxReplay: 100_000 });
    const bigServer = await serveRealtime(big);
    const before = await big.currentEventId();
    await db.query(
      `INSERT INTO "${bigSchema}"."events" (type, scope, detail)
       SELECT 'bulk', 'global', jsonb_build_object('n', g) FROM generate_series(1, 100000) g`,
    );
    const stream = await resumeAt(bigServer, before);
    await stream.waitForEvents(100_000, 100_000);
    const events = stream.events;
    expect(events).toHaveLength(100_000);
    expect(events[0]?.detail).toEqual({ n: 1 });
    expect(events.at(-1)?.detail).toEqual({ n: 100_000 });
    expect(events.every((e, i) => i === 0 || BigInt(e.id) > BigInt(events[i - 1]?.id ?? "0"))).toBe(true);
    stream.close();
    await big.close();
    await bigServer.close();
  });
});

describe("resume without storage", () => {
  it("resets, since nothing can be replayed", async () => {
    const { realtime } = await migratedRealtime({ storage: false });
    const server = await serveRealtime(realtime);
    const stream = await resumeAt(server, "5");
    const reset = await stream.next("reset");
    expect(JSON.parse(reset.data)).toEqual({ reason: "storage-off" });
    // An empty id clears the client's cursor: there is nothing to resume from.
    expect(reset.id).toBe("");
    stream.close();
    await realtime.close();
    await server.close();
  });
});

describe("C14 transactional publish", () => {
  it("delivers nothing for a rolled-back transaction and once for a committed one", async () => {
    const { realtime, schema } = await migratedRealtime();
    const received: RealtimeEvent[] = [];
    realtime.subscribe((event) => received.push(event));
    await realtime.ready();
    const client = await db.connect();
    try {
      await client.query("BEGIN");
      const rolledBack = await realtime.publishGlobal({ type: "rolled_back" }, { client });
      await client.query("ROLLBACK");
      await client.query("BEGIN");
      const committed = await realtime.publishGlobal({ type: "committed", detail: { ok: 1 } }, { client });
      expect(received).toEqual([]);
      await client.query("COMMIT");
      const fence = await realtime.publishGlobal({ type: "fence" });
      await expect.poll(() => received.map((e) => e.id)).toEqual([committed.id, fence.id]);
      const { rows } = await db.query(`SELECT id::text FROM "${schema}"."events" WHERE id = $1`, [
        rolledBack.id,
      ]);
      expect(rows).toEqual([]);
    } finally {
      client.release();
      await realtime.close();
    }
  });

  it("refuses a client without query()", async () => {
    const { realtime } = await migratedRealtime();
    await expect(realtime.publishGlobal({ type: "t" }, { client: {} as never })).rejects.toThrow(/query/);
    await realtime.close();
  });
});

describe("limits", () => {
  it("refuses streams over maxConnections with 503 and over maxConnectionsPerUser with 429, both with Retry-After", async () => {
    const { realtime } = await migratedRealtime({ maxConnections: 3, maxConnectionsPerUser: 2 });
    const server = await serveRealtime(realtime);
    const open = (user: string) => SseClient.open(`${server.url}/realtime/events?user=${user}`);
    const a1 = await open("a");
    const a2 = await open("a");
    const a3 = await open("a");
    expect([a1.response.status, a2.response.status, a3.response.status]).toEqual([200, 200, 429]);
    expect(a3.response.headers.get("retry-after")).toMatch(/^\d+$/);
    const b1 = await open("b");
    const b2 = await open("b");
    expect([b1.response.status, b2.response.status]).toEqual([200, 503]);
    expect(b2.response.headers.get("retry-after")).toMatch(/^\d+$/);
    // The refused ones disturbed nothing: the open streams still get events.
    const event = await realtime.publishGlobal({ type: "still_here" });
    for (const stream of [a1, a2, b1]) {
      await stream.waitForEvents(1);
      expect(stream.events[0]?.id).toBe(event.id);
    }
    a1.close();
    await expect.poll(() => realtime.connectionCount).toBe(2);
    const a4 = await open("a");
    expect(a4.response.status).toBe(200);
    for (const stream of [a2, a4, b1]) stream.close();
    await realtime.close();
    await server.close();
  });

  it("refuses a detail over maxPayloadBytes before writing anything", async () => {
    const { realtime, schema } = await migratedRealtime({ maxPayloadBytes: 1000 });
    await expect(realtime.publishGlobal({ type: "big", detail: { s: "é".repeat(500) } })).rejects.toThrow(
      RangeError,
    );
    const { rows } = await db.query(`SELECT count(*)::int AS n FROM "${schema}"."events"`);
    expect(rows[0].n).toBe(0);
    await realtime.close();
  });
});
