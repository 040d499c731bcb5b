// Cursors that outlive what they were earned on: a late commit seen by no page of a replay (C35), a cursor
// carried across identities (C37), and a database whose history went back (C38). Events are known by
// `data.id` (or, where ids are reused, by their detail); `id:` lines are opaque cursors, resent as they came.
import { execFile } from "node:child_process";
import { rm } from "node:fs/promises";
import { promisify } from "node:util";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import type { RealtimeEvent } from "../src/index.js";
import { databaseUrl } from "./support/database.js";
import { createDedicatedPostgres, type DedicatedPostgres, withClient } from "./support/dedicated-postgres.js";
import { ResumingClient } from "./support/resuming.js";
import { migratedRealtime, serveRealtime } from "./support/server.js";
import { openStream, type SseClient } from "./support/sse.js";
import { carried, cursorOf, lastCursor } from "./support/wire.js";

const run = promisify(execFile);

let db: pg.Pool;
beforeAll(() => {
  db = new pg.Pool({ connectionString: databaseUrl(), max: 4 });
});
afterAll(() => db.end());

/** A realtime instance and its HTTP server, both closed when the test ends. */
async function served(options: Parameters<typeof migratedRealtime>[0] = {}) {
  const { realtime, schema } = await migratedRealtime(options);
  onTestFinished(() => realtime.close());
  const server = await serveRealtime(realtime);
  onTestFinished(() => server.close());
  const url = (user: string | null) => `${server.url}/realtime/events${user === null ? "" : `?user=${user}`}`;
  return { realtime, schema, url };
}

const has = (id: string) => (stream: SseClient) => carried(stream, id);

describe("C35 a late commit between the pages of a replay", () => {
  it("C35 an event committed after page 1 was read, before a later page replays M, is delivered once across a drop at M", async () => {
    // The replay is held inside page 1 by onReceive (it runs for replayed events too), so the test knows
    // page 1 has been read, without L, when L commits.
    let gating = false;
    let reached!: () => void;
    const pageOneRead = new Promise<void>((resolve) => {
      reached = resolve;
    });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const { realtime, url } = await served({
      onReceive: async (event) => {
        if (gating && event.type === "gate") {
          reached();
          await gate;
        }
        return event;
      },
    });
    const handled: string[] = [];
    realtime.subscribe((event) => handled.push(event.id));
    await realtime.ready();
    const start = await realtime.currentEventId();
    const held = await db.connect();
    const bulk = await db.connect();
    onTestFinished(async () => {
      await held.query("ROLLBACK").catch(() => {});
      held.release();
      bulk.release();
    });
    await held.query("BEGIN");
    const late = await realtime.publishGlobal({ type: "late", detail: {} }, { client: held });
    // Over two pages of 500, so that M lands on a page read after L committed.
    await bulk.query("BEGIN");
    let last: RealtimeEvent | undefined;
    for (let i = 0; i < 1200; i++) {
      last = await realtime.publishGlobal(
        { type: i === 3 ? "gate" : "bulk", detail: { i } },
        { client: bulk },
      );
    }
    await bulk.query("COMMIT");
    const lastBulk = (last as RealtimeEvent).id;
    await expect.poll(() => handled.includes(lastBulk), { timeout: 15_000 }).toBe(true);
    gating = true;

    const first = await openStream(url("alice"), start);
    await pageOneRead;
    await held.query("COMMIT");
    const m = await realtime.publishGlobal({ type: "after_late", detail: {} });
    release();
    await first.until(has(m.id), "M, replayed", 15_000);
    // The client drops right after M: whatever followed it on the wire never reached the page.
    first.close();
    const beforeDrop = first.events.slice(0, first.events.findIndex((e) => e.id === m.id) + 1);
    expect(beforeDrop.length).toBeGreaterThan(1000);

    const second = await openStream(url("alice"), cursorOf(first, m.id));
    const fence = await realtime.publishGlobal({ type: "fence" });
    await second.until(has(fence.id), "the fence");
    const times = [...beforeDrop, ...second.events].filter((e) => e.id === late.id).length;
    expect(
      times,
      `L (${late.id}) before the drop: ${beforeDrop.some((e) => e.id === late.id)}; after: ${JSON.stringify(second.messages)}`,
    ).toBe(1);
  });
});

describe("C37 a cursor carried across identities", () => {
  it("C37 a user stream that was anonymous meanwhile gets the user event published then, or reset identity-changed", async () => {
    const { realtime, url } = await served();
    const signedIn = await openStream(url("42"));
    await realtime.publish({ userId: 42, type: "before_expiry" });
    const news1 = await realtime.publishGlobal({ type: "news", detail: { n: 1 } });
    await signedIn.until(has(news1.id), "the first news");
    signedIn.close();

    // The session expired: the tab reconnects without the user, carrying the cursor it had.
    const anonymous = await openStream(url(null), lastCursor(signedIn));
    const news2 = await realtime.publishGlobal({ type: "news", detail: { n: 2 } });
    await anonymous.until(has(news2.id), "the second news");
    const missed = await realtime.publish({ userId: 42, type: "while_anonymous", detail: {} });
    const news3 = await realtime.publishGlobal({ type: "news", detail: { n: 3 } });
    await anonymous.until(has(news3.id), "the third news");
    expect(carried(anonymous, missed.id)).toBe(false);
    anonymous.close();

    const back = await openStream(url("42"), lastCursor(anonymous));
    const fence = await realtime.publishGlobal({ type: "fence" });
    await back.until(has(fence.id), "the fence");
    const reset = back.messages.find((m) => m.event === "reset");
    const outcome = carried(back, missed.id)
      ? "delivered"
      : reset
        ? `reset ${JSON.parse(reset.data).reason}`
        : "skipped silently";
    expect(["delivered", "reset identity-changed"], JSON.stringify(back.messages)).toContain(outcome);
  });
});

describe("C38 the database goes back in time", () => {
  let postgres: DedicatedPostgres | undefined;
  afterAll(() => postgres?.dispose());

  /** Stops the server, runs `fn` on its stopped data directory, starts it again. */
  async function whileStopped(server: DedicatedPostgres, fn: () => Promise<unknown>): Promise<void> {
    await server.stop();
    await fn();
    await server.start();
  }

  it("C38 after a restore to id 3, the 5 new events (ids 4..8) reach streams and handlers; resuming from old 6 resets or gets them", {
    timeout: 60_000,
  }, async () => {
    postgres = await createDedicatedPostgres(["-c", "fsync=off", "-c", "full_page_writes=off"]);
    const server = postgres;
    await server.start();
    const backup = `${server.dataDir}-backup`;
    onTestFinished(() => rm(backup, { recursive: true, force: true }));
    const { realtime, schema, url } = await served({ connectionString: server.url(), heartbeatMs: 500 });
    let reconnects = 0;
    realtime.on("reconnect", () => reconnects++);
    const reconnected = async (since: number) =>
      expect.poll(() => reconnects, { timeout: 20_000 }).toBeGreaterThan(since);
    const handled: RealtimeEvent[] = [];
    realtime.subscribe((event) => handled.push(event));
    await realtime.ready();
    const live = new ResumingClient(url("alice"));
    onTestFinished(() => live.close());
    await live.connect();
    const publish = (generation: string, n: number) =>
      n % 2 === 0
        ? realtime.publish({ userId: "alice", type: "step", detail: { generation, n } })
        : realtime.publishGlobal({ type: "step", detail: { generation, n } });

    const old: RealtimeEvent[] = [];
    for (let n = 1; n <= 3; n++) old.push(await publish("old", n));
    await live.until((events) => events.length === 3, "ids 1..3");
    // `cp -a`: the copy keeps the data directory's owner (a `postgres` user when the tests run as root).
    let since = reconnects;
    await whileStopped(server, () => run("cp", ["-a", server.dataDir, backup]));
    await reconnected(since);
    for (let n = 4; n <= 6; n++) old.push(await publish("old", n));
    const six = (old[5] as RealtimeEvent).id;
    await live.until((events) => events.some((e) => e.id === six), "ids 4..6");
    await expect.poll(() => handled.length).toBe(6);
    const cursorOfSix = live.lastEventId;

    since = reconnects;
    await whileStopped(server, async () => {
      await rm(server.dataDir, { recursive: true, force: true });
      await run("cp", ["-a", backup, server.dataDir]);
    });
    const { rows } = await withClient(server.url(), (client) =>
      client.query(`SELECT max(id)::text AS max FROM "${schema}"."events"`),
    );
    expect(rows[0]?.max).toBe((old[2] as RealtimeEvent).id);
    await reconnected(since);
    const fresh: RealtimeEvent[] = [];
    for (let n = 1; n <= 5; n++) fresh.push(await publish("new", n));
    // The precondition of the case: the restored table hands out 4..6 again.
    expect(fresh.slice(0, 3).map((e) => e.id)).toEqual(old.slice(3).map((e) => e.id));

    // Ids are reused here, so the new events are told apart by their detail.
    const newOnes = (events: Array<{ detail: Record<string, unknown> }>) =>
      new Set(events.filter((e) => e.detail.generation === "new").map((e) => e.detail.n)).size;
    // Soft: the resume below is checked even when live delivery already failed.
    await settle(() => newOnes(handled) === 5 && newOnes(live.received) === 5, 10_000);
    expect.soft(newOnes(handled), "new events that reached the subscribe handler").toBe(5);
    expect
      .soft(newOnes(live.received), `new events on the live stream: ${JSON.stringify(live.received)}`)
      .toBe(5);

    const resumed = await openStream(url("alice"), cursorOfSix);
    const fence = await realtime.publishGlobal({ type: "fence", detail: { generation: "fence" } });
    await resumed.until(has(fence.id), "the fence");
    const reset = resumed.messages.find((m) => m.event === "reset");
    const outcome = reset
      ? `reset ${JSON.parse(reset.data).reason}`
      : `${newOnes(resumed.events)} new events`;
    expect(["reset history-changed", "5 new events"], JSON.stringify(resumed.messages)).toContain(outcome);
  });
});

/** Polls `predicate` until it holds or `timeoutMs` passed; resolves to whether it held. */
async function settle(predicate: () => boolean, timeoutMs: number): Promise<boolean> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; ) {
    if (predicate()) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return predicate();
}
