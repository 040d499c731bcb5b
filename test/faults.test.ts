// The fault-injection suite: one realtime server, several resuming clients and a backend subscriber,
// a scripted run of publishes with faults in between (LISTEN backend killed while events keep coming,
// interleaved transactions, every client connection cut mid-stream, a reader that stalls), then a
// checker: every client received, exactly once, every event it may see and none it may not, and
// sequentially published events in order.
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Realtime, RealtimeEvent } from "../src/index.js";
import { databaseUrl } from "./support/database.js";
import { runTs } from "./support/process.js";
import { ResumingClient } from "./support/resuming.js";
import { migratedRealtime, serveRealtime } from "./support/server.js";
import { stallingReader } from "./support/stalling.js";

type Server = Awaited<ReturnType<typeof serveRealtime>>;
type Audience = { user: string | null; subscriber?: boolean };

describe("fault injection", () => {
  let admin: pg.Pool;
  let realtime: Realtime;
  let server: Server;
  let schema: string;
  let connectionString: string;
  const role = `rt_listener_${Math.random().toString(36).slice(2, 10)}`;
  /** Every event that committed, by id. */
  const published = new Map<string, RealtimeEvent>();
  /** Events whose publish call completed before the next began: their commit order is their id order. */
  const sequential = new Set<string>();
  const subscriberGot: RealtimeEvent[] = [];
  const clients = new Map<string, { client: ResumingClient; audience: Audience }>();

  beforeAll(async () => {
    admin = new pg.Pool({ connectionString: databaseUrl(), max: 4 });
    // The LISTEN connection logs in as its own role, so the test can keep it out while events flow.
    await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD 'listener'`);
    const url = new URL(databaseUrl());
    url.username = role;
    url.password = "listener";
    ({ realtime, schema, connectionString } = await migratedRealtime({
      listenConnectionString: url.toString(),
      heartbeatMs: 300,
      maxBufferedBytes: 256 * 1024,
    }));
    realtime.subscribe((event) => subscriberGot.push(event));
    await realtime.ready();
    server = await serveRealtime(realtime);
    for (const [name, user] of [
      ["alice tab 1", "alice"],
      ["alice tab 2", "alice"],
      ["bob", "42"],
      ["anonymous", null],
    ] as const) {
      const client = new ResumingClient(`${server.url}/realtime/events${user ? `?user=${user}` : ""}`);
      await client.connect();
      clients.set(name, { client, audience: { user } });
    }
  });

  afterAll(async () => {
    for (const { client } of clients.values()) client.close();
    await realtime?.close();
    await server?.close();
    await admin.query(`DROP ROLE IF EXISTS ${role}`);
    await admin.end();
  });

  function record(event: RealtimeEvent, inOrder = true): RealtimeEvent {
    published.set(event.id, event);
    if (inOrder) sequential.add(event.id);
    return event;
  }

  /** One event of each kind a client may or may not see; `n` tags them. */
  async function publishMix(n: number, detail: Record<string, unknown> = {}): Promise<void> {
    record(await realtime.publish({ userId: "alice", type: "for_alice", detail: { n, ...detail } }));
    record(await realtime.publishGlobal({ type: "for_all", detail: { n, ...detail } }));
    record(await realtime.publish({ userId: 42, type: "for_bob", detail: { n, ...detail } }));
    record(await realtime.publishSystem({ type: "internal", detail: { n, ...detail } }));
    record(await realtime.publish({ userId: "mallory", type: "for_mallory", detail: { n, ...detail } }));
  }

  async function listenerBackends(): Promise<number> {
    const { rows } = await admin.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = $1", [
      role,
    ]);
    return rows[0].n;
  }

  it("runs the scripted faults", { timeout: 90_000 }, async () => {
    // 1. Steady state.
    for (let n = 0; n < 5; n++) await publishMix(n);

    // 2. Interleaved transactions, one rolled back: ids are handed out in one order, committed in another.
    const [t1, t2, t3, t4] = await Promise.all([1, 2, 3, 4].map(() => admin.connect()));
    try {
      for (const t of [t1, t2, t3, t4]) await t?.query("BEGIN");
      record(await realtime.publish({ userId: "alice", type: "tx_alice" }, { client: t1 }), false);
      record(await realtime.publishGlobal({ type: "tx_all" }, { client: t2 }), false);
      const doomed = await realtime.publishGlobal({ type: "tx_rolled_back" }, { client: t4 });
      record(await realtime.publish({ userId: 42, type: "tx_bob" }, { client: t3 }), false);
      await t3?.query("COMMIT");
      await t2?.query("COMMIT");
      await t4?.query("ROLLBACK");
      await t1?.query("COMMIT");
      expect(published.has(doomed.id)).toBe(false);
    } finally {
      for (const t of [t1, t2, t3, t4]) t?.release();
    }

    // 3. The LISTEN backend dies and cannot come back for a while; events keep being published, from
    //    this process and from another one.
    const lost = new Promise<void>((resolve) => realtime.on("error", () => resolve()));
    const back = new Promise<void>((resolve) => realtime.on("reconnect", resolve));
    await admin.query(`ALTER ROLE ${role} NOLOGIN`);
    await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", [role]);
    await lost;
    for (let n = 100; n < 105; n++) await publishMix(n);
    const calls = [
      { method: "publish", input: { userId: "alice", type: "remote_alice", detail: { from: "child" } } },
      { method: "publishGlobal", input: { type: "remote_all", detail: { from: "child" } } },
      { method: "publishSystem", input: { type: "remote_internal", detail: { from: "child" } } },
    ];
    const remote = JSON.parse(
      await runTs(new URL("./fixtures/publisher.ts", import.meta.url), [
        connectionString,
        schema,
        JSON.stringify(calls),
      ]),
    ) as RealtimeEvent[];
    for (const event of remote) record({ ...event, createdAt: new Date(event.createdAt) });
    expect(await listenerBackends()).toBe(0);
    await admin.query(`ALTER ROLE ${role} LOGIN`);
    await back;
    for (let n = 200; n < 203; n++) await publishMix(n);

    // 4. Every client connection is cut mid-stream, while events are being published.
    for (let n = 300; n < 310; n++) {
      await publishMix(n);
      if (n === 303) server.server.closeAllConnections();
    }

    // 5. A reader stalls: it stops reading while large events pile up, is disconnected, and resumes
    //    from the last id it had.
    const stalled = await stallingReader(server.url, "carol");
    const fence = record(await realtime.publishGlobal({ type: "stall_fence" }));
    await stalled.seen(fence.id);
    stalled.pause();
    const before = realtime.connectionCount;
    // The kernel's socket buffers take megabytes before the server's own buffer grows: keep publishing
    // until the server gives up on the reader (bounded, so a server that never does fails the test).
    const big = "x".repeat(64 * 1024);
    for (let n = 400; n < 1000 && realtime.connectionCount === before; n++) {
      record(await realtime.publishGlobal({ type: "big", detail: { n, big } }));
    }
    await expect.poll(() => realtime.connectionCount, { timeout: 10_000 }).toBe(before - 1);
    stalled.destroy();
    const carol = new ResumingClient(`${server.url}/realtime/events?user=carol`, fence.id);
    await carol.connect();
    // Carol saw everything up to the fence on her first connection.
    const carolBefore = [...published.values()].filter(
      (e) => e.scope === "global" && BigInt(e.id) <= BigInt(fence.id),
    );
    clients.set("carol", { client: carol, audience: { user: "carol" } });
    for (let n = 500; n < 503; n++) await publishMix(n);

    // 6. A last event everyone sees; once it is in, everything before it is.
    const last = record(await realtime.publishGlobal({ type: "last" }));
    for (const [name, { client }] of clients) {
      await client.until((events) => events.some((e) => e.id === last.id), `${name} to get the last event`);
    }
    await expect.poll(() => subscriberGot.some((e) => e.id === last.id)).toBe(true);

    // The checker.
    for (const [name, { client, audience }] of clients) {
      const prefix = name === "carol" ? carolBefore.map((e) => e.id) : [];
      check(name, [...prefix, ...client.dispatched.map((e) => e.id)], audience);
      // Carol's first connection was the stalled raw socket.
      if (name !== "carol") expect(client.connects, `${name} reconnected`).toBeGreaterThan(1);
      // On the wire, the server may repeat only events of transactions concurrent with a client's
      // cursor (the client drops those); a sequentially published event is never sent twice.
      const sent = client.received.map((e) => e.id);
      const repeated = sent.filter((id, i) => sent.indexOf(id) !== i);
      expect(
        repeated.filter((id) => sequential.has(id)),
        `${name} was sent a sequential event twice`,
      ).toEqual([]);
    }
    check(
      "subscriber",
      subscriberGot.map((e) => e.id),
      { user: null, subscriber: true },
    );
    // What subscribers get is the stored event, nothing else.
    for (const event of subscriberGot) expect(event).toEqual(published.get(event.id));
  });

  function check(name: string, got: string[], audience: Audience): void {
    const visible = (e: RealtimeEvent) =>
      audience.subscriber || e.scope === "global" || (e.scope === "user" && e.userId === audience.user);
    const expected = [...published.values()].filter(visible).map((e) => e.id);
    const foreign = got.filter((id) => !published.has(id) || !visible(published.get(id) as RealtimeEvent));
    expect(foreign, `${name} received events it may not see`).toEqual([]);
    expect(got.length, `${name} received a duplicate`).toBe(new Set(got).size);
    const missing = expected.filter((id) => !got.includes(id));
    expect(missing, `${name} missed events`).toEqual([]);
    const ordered = got.filter((id) => sequential.has(id)).map(BigInt);
    const outOfOrder = ordered.filter((id, i) => i > 0 && id < (ordered[i - 1] as bigint));
    expect(outOfOrder, `${name} received sequential events out of order`).toEqual([]);
  }
});
