// The whole delivery algorithm against a reference model (test/support/model.ts), property-based: random
// schedules of publishes, transactions committed out of order or rolled back, LISTEN faults through a
// TCP proxy (cuts, rapid back-to-back cuts, blackholes, refusals, cuts in the middle of start-up),
// clients dropping and resuming on the other server, identity changes and forged notifications. Two servers (each with its own LISTEN connection and receiver), a third
// instance publishing. `PGREALTIME_MODEL_RUNS=200` runs longer; a failure prints its seed and path and
// shrinks to a minimal schedule.
import fc from "fast-check";
import type pg from "pg";
import { describe, expect, it } from "vitest";
import type { Realtime, RealtimeEvent } from "../src/index.js";
import { databaseUrl, filePool } from "./support/database.js";
import { clientProblems, type Published, subscriberProblems } from "./support/model.js";
import { type FaultProxy, startProxy } from "./support/proxy.js";
import { ResumingClient } from "./support/resuming.js";
import { migratedRealtime, serveRealtime } from "./support/server.js";

const RUNS = Number(process.env.PGREALTIME_MODEL_RUNS ?? 6);
// A 32-bit integer, as fast-check takes and reports seeds.
const SEED =
  process.env.PGREALTIME_MODEL_SEED === undefined
    ? Math.floor(Math.random() * 2 ** 31)
    : Number(process.env.PGREALTIME_MODEL_SEED);
const HEARTBEAT_MS = 300;
const SETTLE_MS = 20_000;
const files = filePool(6);

/** Forged notifications (C36): nothing they say may reach anyone, suppress or reorder a real event. */
const FORGERIES = ["next-id", "user", "reserved", "crlf", "not-an-id", "max-id", "hint"] as const;

const server = fc.constantFrom(0, 1);
const client = fc.constantFrom(0, 1, 2, 3);
const audience = fc.constantFrom("alice", "bob", "global", "system");
const action = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant("publish" as const), to: audience }) },
  // Concurrent publishes of one process, coalesced into one transaction.
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("burst" as const),
      to: fc.array(audience, { minLength: 2, maxLength: 8 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("openTx" as const),
      to: audience,
      count: fc.integer({ min: 1, max: 3 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant("endTx" as const), commit: fc.boolean(), newest: fc.boolean() }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("cut" as const), server }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("rapidCuts" as const),
      server,
      times: fc.integer({ min: 2, max: 5 }),
      gapMs: fc.integer({ min: 20, max: 120 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("blackhole" as const),
      server,
      ms: fc.integer({ min: 50, max: 800 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("refuse" as const),
      server,
      ms: fc.integer({ min: 50, max: 600 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("killDuringStartup" as const),
      server,
      bytes: fc.integer({ min: 1, max: 400 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant("forge" as const), variant: fc.constantFrom(...FORGERIES) }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("drop" as const), client, server }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant("identity" as const), client, anonymous: fc.boolean() }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant("wait" as const), ms: fc.integer({ min: 0, max: 100 }) }),
  },
);
type Action = typeof action extends fc.Arbitrary<infer A> ? A : never;

const HOMES = ["alice", "bob", null, "alice"] as const;

async function forge(schema: string, variant: (typeof FORGERIES)[number]): Promise<void> {
  const { rows } = await files.pool.query(
    `SELECT coalesce(pg_sequence_last_value(pg_get_serial_sequence('"${schema}".events', 'id')), 0) + 1 AS next`,
  );
  const next = String(rows[0].next);
  const event = (fields: object) =>
    JSON.stringify({ id: next, type: "forged", scope: "global", userId: null, detail: {}, ...fields });
  const payload = {
    "next-id": event({}),
    user: event({ scope: "user", userId: "alice" }),
    reserved: event({ type: "reset" }),
    crlf: event({ id: `${next}\nevent: reset\nretry: 1` }),
    "not-an-id": event({ id: "abc" }),
    "max-id": event({ id: "9223372036854775807" }),
    hint: JSON.stringify({ k: "hint", id: next }),
  }[variant];
  await files.pool.query("SELECT pg_notify($1, $2)", [`${schema}_events`, payload]);
}

/** Two served instances listening through their own proxies, a publisher, four clients. */
async function world() {
  const proxies = await Promise.all([0, 1].map(() => startProxy(databaseUrl())));
  const first = await migratedRealtime({
    heartbeatMs: HEARTBEAT_MS,
    listenConnectionString: proxies[0]?.connectionString,
  });
  const second = await migratedRealtime({
    schema: first.schema,
    heartbeatMs: HEARTBEAT_MS,
    listenConnectionString: proxies[1]?.connectionString,
  });
  const publisher = await migratedRealtime({ schema: first.schema });
  const servers = [first.realtime, second.realtime];
  const handled = servers.map(() => [] as string[]);
  for (const [i, realtime] of servers.entries()) {
    realtime.subscribe((event: RealtimeEvent) => handled[i]?.push(event.id));
  }
  await Promise.all(servers.map((realtime) => realtime.ready()));
  const http = await Promise.all(servers.map((realtime) => serveRealtime(realtime)));
  const urlOf = (at: number, user: string | null) =>
    `${http[at]?.url}/realtime/events${user === null ? "" : `?user=${user}`}`;
  // The page's starting cursor (C11): a client that drops before its first event resumes from it.
  const start = await publisher.realtime.currentEventId();
  const clients = HOMES.map((home, i) => new ResumingClient(urlOf(i % 2, home), start));
  await Promise.all(clients.map((c) => c.connect()));
  const close = async () => {
    for (const c of clients) c.close();
    await Promise.all([
      ...http.map((h) => h.close()),
      ...servers.map((r) => r.close()),
      publisher.realtime.close(),
    ]);
    await Promise.all(proxies.map((p) => p.close()));
  };
  return {
    schema: first.schema,
    proxies: proxies as FaultProxy[],
    servers,
    publisher: publisher.realtime,
    handled,
    clients,
    urlOf,
    close,
  };
}

type World = Awaited<ReturnType<typeof world>>;

/** Runs one schedule, settles, and returns what the model finds wrong. */
async function runSchedule(actions: Action[]): Promise<string[]> {
  const w = await world();
  const published = new Map<string, Published>();
  const open: Array<{ client: pg.PoolClient; events: Published[] }> = [];
  const switched = new Set<number>();
  const where = HOMES.map((_, i) => i % 2);
  try {
    for (const step of actions) await perform(step, w, published, open, switched, where);
    for (const tx of open.splice(0)) await endTx(tx, true);
    for (const proxy of w.proxies) {
      proxy.refuse(false);
      proxy.restore();
    }
    // Every client back home, on its server, then a fence everyone must see.
    w.clients.forEach((c, i) => {
      c.url = w.urlOf(where[i] as number, HOMES[i] as string | null);
      c.drop();
    });
    await Promise.all(w.servers.map((r) => r.ready()));
    const fence = await w.publisher.publishGlobal({ type: "fence" });
    await Promise.all(
      w.clients.map((c, i) =>
        c.until((got) => got.some((e) => e.id === fence.id), `client ${i}: the fence`, SETTLE_MS),
      ),
    );
    await expect
      .poll(() => w.handled.every((ids) => ids.includes(fence.id)), { timeout: SETTLE_MS })
      .toBe(true);
    return [
      ...w.handled.flatMap((ids, i) =>
        subscriberProblems(
          `server ${i} subscriber`,
          ids.filter((id) => id !== fence.id),
          published,
        ),
      ),
      ...w.clients.flatMap((c, i) =>
        clientProblems(`client ${i}`, c, HOMES[i] as string | null, switched.has(i), published),
      ),
    ];
  } finally {
    for (const tx of open) await endTx(tx, false);
    await w.close();
  }
}

async function perform(
  step: Action,
  w: World,
  published: Map<string, Published>,
  open: Array<{ client: pg.PoolClient; events: Published[] }>,
  switched: Set<number>,
  where: number[],
): Promise<void> {
  switch (step.kind) {
    case "publish":
      await publish(w.publisher, step.to, published);
      return;
    case "burst":
      await Promise.all(step.to.map((to) => publish(w.publisher, to, published)));
      return;
    case "openTx": {
      const tx = { client: await files.pool.connect(), events: [] as Published[] };
      open.push(tx);
      await tx.client.query("BEGIN");
      for (let i = 0; i < step.count; i++)
        tx.events.push(await publish(w.publisher, step.to, published, tx.client));
      return;
    }
    case "endTx": {
      const tx = step.newest ? open.pop() : open.shift();
      if (tx) await endTx(tx, step.commit);
      return;
    }
    case "cut":
      w.proxies[step.server]?.cut();
      return;
    case "rapidCuts":
      for (let i = 0; i < step.times; i++) {
        w.proxies[step.server]?.cut();
        await sleep(step.gapMs);
      }
      return;
    case "blackhole":
      w.proxies[step.server]?.blackhole();
      await sleep(step.ms);
      w.proxies[step.server]?.restore();
      return;
    case "refuse":
      // New connections fail for a while, the LISTEN connection's among them, after a cut.
      w.proxies[step.server]?.refuse(true);
      w.proxies[step.server]?.cut();
      await sleep(step.ms);
      w.proxies[step.server]?.refuse(false);
      return;
    case "killDuringStartup":
      w.proxies[step.server]?.killDuringStartup(step.bytes);
      w.proxies[step.server]?.cut();
      return;
    case "forge":
      await forge(w.schema, step.variant);
      return;
    case "drop": {
      const c = w.clients[step.client] as ResumingClient;
      where[step.client] = step.server;
      c.url = w.urlOf(step.server, new URL(c.url).searchParams.get("user"));
      c.drop();
      return;
    }
    case "identity": {
      const c = w.clients[step.client] as ResumingClient;
      const home = HOMES[step.client] as string | null;
      if (home === null) return;
      switched.add(step.client);
      c.url = w.urlOf(where[step.client] as number, step.anonymous ? null : home);
      c.drop();
      return;
    }
    case "wait":
      await sleep(step.ms);
  }
}

async function publish(
  realtime: Realtime,
  to: "alice" | "bob" | "global" | "system",
  published: Map<string, Published>,
  client?: pg.PoolClient,
): Promise<Published> {
  const insertedAt = Date.now();
  const options = client ? { client } : undefined;
  const event =
    to === "global"
      ? await realtime.publishGlobal({ type: "model" }, options)
      : to === "system"
        ? await realtime.publishSystem({ type: "model" }, options)
        : await realtime.publish({ userId: to, type: "model" }, options);
  const entry: Published = {
    id: event.id,
    scope: event.scope,
    userId: event.userId,
    insertedAt,
    committedAt: client ? null : Date.now(),
  };
  published.set(event.id, entry);
  return entry;
}

async function endTx(tx: { client: pg.PoolClient; events: Published[] }, commit: boolean): Promise<void> {
  try {
    await tx.client.query(commit ? "COMMIT" : "ROLLBACK");
    const at = commit ? Date.now() : Number.POSITIVE_INFINITY;
    for (const event of tx.events) event.committedAt = at;
  } finally {
    tx.client.release();
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("the delivery algorithm against its model", () => {
  it(`holds for ${RUNS} random schedules of faults, out-of-order commits, drops, identity changes and forgeries (seed ${SEED})`, {
    timeout: 60_000 + RUNS * 30_000,
  }, async () => {
    console.log(`model test: seed ${SEED}, ${RUNS} runs (PGREALTIME_MODEL_SEED=${SEED} replays them)`);
    await fc.assert(
      fc.asyncProperty(fc.array(action, { minLength: 4, maxLength: 24 }), async (actions) => {
        const problems = await runSchedule(actions);
        if (problems.length > 0) throw new Error(problems.join("\n"));
      }),
      { numRuns: RUNS, seed: SEED, endOnFailure: process.env.PGREALTIME_MODEL_SHRINK === undefined },
    );
  });
});
