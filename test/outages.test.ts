// LISTEN outages of the kinds a failover or a dead network path makes: the backend killed again and
// again while two processes publish (C34), and a path that stays open but passes nothing. Streams and
// subscribers are checked against the reference model (test/support/model.ts), then resumed once more.
import { describe, expect, it, onTestFinished } from "vitest";
import type { Realtime } from "../src/index.js";
import { databaseUrl, filePool } from "./support/database.js";
import { clientProblems, type Published, subscriberProblems } from "./support/model.js";
import { runTs } from "./support/process.js";
import { startProxy } from "./support/proxy.js";
import { ResumingClient } from "./support/resuming.js";
import { migratedRealtime, serveRealtime } from "./support/server.js";

const files = filePool(2);
const HEARTBEAT_MS = 300;
const PUBLISHER = new URL("./fixtures/publisher.ts", import.meta.url);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A served instance with a subscriber, and clients of alice, bob and anonymous; closed at the end. */
async function served(options: Parameters<typeof migratedRealtime>[0]) {
  const { realtime, schema } = await migratedRealtime({ heartbeatMs: HEARTBEAT_MS, ...options });
  onTestFinished(() => realtime.close());
  const handled: string[] = [];
  realtime.subscribe((event) => handled.push(event.id));
  await realtime.ready();
  const server = await serveRealtime(realtime);
  onTestFinished(() => server.close());
  const homes = ["alice", "bob", null] as const;
  // The page's starting cursor (C11): a client that drops before its first event resumes from it.
  const start = await realtime.currentEventId();
  const clients = homes.map(
    (home) => new ResumingClient(`${server.url}/realtime/events${home ? `?user=${home}` : ""}`, start),
  );
  onTestFinished(() => {
    for (const c of clients) c.close();
  });
  await Promise.all(clients.map((c) => c.connect()));
  return { realtime, schema, handled, clients, homes };
}

/** Publishes `count` events, cycling through alice, bob, global and system, awaiting each. */
async function publishMany(realtime: Realtime, count: number, published: Map<string, Published>) {
  for (let i = 0; i < count; i++) {
    const insertedAt = Date.now();
    const to = ["alice", "bob", "global", "system"][i % 4] as string;
    const event =
      to === "global"
        ? await realtime.publishGlobal({ type: "outage", detail: { i } })
        : to === "system"
          ? await realtime.publishSystem({ type: "outage", detail: { i } })
          : await realtime.publish({ userId: to, type: "outage", detail: { i } });
    published.set(event.id, {
      id: event.id,
      scope: event.scope,
      userId: event.userId,
      insertedAt,
      committedAt: Date.now(),
    });
  }
}

/** The same from another OS process; its events count as written at its start and committed at its end. */
async function publishElsewhere(schema: string, count: number, published: Map<string, Published>) {
  const calls = Array.from({ length: count }, (_, i) =>
    i % 2 === 0
      ? { method: "publishGlobal", input: { type: "elsewhere", detail: { i } } }
      : { method: "publish", input: { userId: "alice", type: "elsewhere", detail: { i } } },
  );
  const startedAt = Date.now();
  const out = await runTs(PUBLISHER, [databaseUrl(), schema, JSON.stringify(calls)]);
  for (const event of JSON.parse(out) as Array<{
    id: string;
    scope: "user" | "global";
    userId: string | null;
  }>) {
    published.set(event.id, { ...event, insertedAt: startedAt, committedAt: Date.now() });
  }
}

/** Waits for a fence everywhere, drops every client once more (resume), then checks the model. */
async function settleAndCheck(world: Awaited<ReturnType<typeof served>>, published: Map<string, Published>) {
  for (const c of world.clients) c.drop();
  const fence = await world.realtime.publishGlobal({ type: "fence" });
  await Promise.all(
    world.clients.map((c, i) =>
      c.until((got) => got.some((e) => e.id === fence.id), `client ${i}: the fence`, 20_000),
    ),
  );
  await expect.poll(() => world.handled.includes(fence.id), { timeout: 20_000 }).toBe(true);
  const problems = [
    ...subscriberProblems(
      "subscriber",
      world.handled.filter((id) => id !== fence.id),
      published,
    ),
    ...world.clients.flatMap((c, i) =>
      clientProblems(`client ${i}`, c, world.homes[i] ?? null, false, published),
    ),
  ];
  expect(problems).toEqual([]);
}

describe("LISTEN outages", () => {
  it("C34 the LISTEN backend killed again and again, 20-120 ms apart, while 2 processes publish: every event once, none skipped by a later resume", async () => {
    const world = await served({});
    const published = new Map<string, Published>();
    // Kills 20-120 ms apart, some landing while a fresh connection catches up; publishing (here and in
    // another OS process) and client drops go on throughout.
    let killing = true;
    let kills = 0;
    const killer = (async () => {
      for (let round = 0; round < 25; round++) {
        const { rows } = await files.pool.query(
          "SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE application_name = $1",
          [`pgrealtime listener ${world.schema}_events`],
        );
        kills += rows[0].n;
        await sleep(20 + Math.floor(Math.random() * 100));
      }
      killing = false;
    })();
    const drops = (async () => {
      for (let i = 0; killing; i++) {
        world.clients[i % 3]?.drop();
        await sleep(150);
      }
    })();
    const here = (async () => {
      while (killing) await publishMany(world.realtime, 8, published);
    })();
    const elsewhere = (async () => {
      while (killing) await publishElsewhere(world.schema, 20, published);
    })();
    await Promise.all([killer, drops, here, elsewhere]);
    expect(kills, "LISTEN backends killed").toBeGreaterThan(5);
    await settleAndCheck(world, published);
  });

  it("a blackholed LISTEN path (open, passing nothing) is noticed and every event published meanwhile arrives once", async () => {
    const proxy = await startProxy(databaseUrl());
    onTestFinished(() => proxy.close());
    const world = await served({ listenConnectionString: proxy.connectionString });
    const published = new Map<string, Published>();
    await publishMany(world.realtime, 8, published);
    proxy.blackhole();
    const reconnected = new Promise<void>((resolve) => world.realtime.on("reconnect", () => resolve()));
    await publishMany(world.realtime, 12, published);
    // Longer than two liveness intervals, so the silence is taken for a dead connection.
    await sleep(3 * HEARTBEAT_MS);
    proxy.restore();
    await reconnected;
    await publishMany(world.realtime, 8, published);
    await settleAndCheck(world, published);
  });
});
