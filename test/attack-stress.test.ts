// attack: out-of-order commits across two processes, savepoints rolled back after a publish, REPEATABLE
// READ and SERIALIZABLE publishers, with clients dropping and resuming at random points while every
// connection of both processes (LISTEN and pool, mid-read and mid-replay) is killed now and then.
// Each client must dispatch every event it may see exactly once, nothing else, and never one before an
// event that committed before it was written.
import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import { createRealtime, type Realtime } from "../src/index.js";
import { databaseUrl, freshSchema } from "./support/database.js";
import { ResumingClient } from "./support/resuming.js";
import { serveRealtime } from "./support/server.js";

const quiet = { debug() {}, info() {}, warn() {}, error: console.error };
const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

type Written = { id: string; userId: string | null; writtenAt: number; committedAt: number };

async function writer(
  realtime: Realtime,
  db: pg.Pool,
  until: number,
  written: Written[],
  n: number,
): Promise<void> {
  const levels = ["READ COMMITTED", "REPEATABLE READ", "SERIALIZABLE"];
  for (let round = 0; Date.now() < until; round++) {
    const client = await db.connect();
    const mine: Array<Omit<Written, "committedAt">> = [];
    try {
      await client.query(`BEGIN ISOLATION LEVEL ${levels[(n + round) % 3]}`);
      if (round % 3 === 1) await client.query("SELECT 1");
      const count = 1 + ((n + round) % 3);
      for (let i = 0; i < count; i++) {
        const userId = (n + i) % 2 === 0 ? "u1" : null;
        const writtenAt = performance.now();
        const input = { type: "e", detail: { n, round, i } };
        const event =
          userId === null
            ? await realtime.publishGlobal(input, { client })
            : await realtime.publish({ ...input, userId }, { client });
        mine.push({ id: event.id, userId, writtenAt });
        if ((n + round + i) % 4 === 0) {
          await client.query("SAVEPOINT s");
          await realtime.publishGlobal({ type: "rolled_back", detail: {} }, { client });
          await client.query("ROLLBACK TO SAVEPOINT s");
        }
        await sleep(Math.random() * 15);
      }
      if (round % 7 === 6) {
        await client.query("ROLLBACK");
      } else {
        await client.query("COMMIT");
        const committedAt = performance.now();
        for (const w of mine) written.push({ ...w, committedAt });
      }
    } catch {
      await client.query("ROLLBACK").catch(() => {});
    } finally {
      client.release();
    }
  }
}

describe("attack: stress", () => {
  it("attack: out-of-order commits, savepoints, RR/SERIALIZABLE, random drops and killed backends", {
    timeout: 90_000,
  }, async () => {
    const schema = freshSchema("atk_st");
    const url = new URL(databaseUrl());
    url.searchParams.set("application_name", `atk_${schema}`);
    const listenUrl = new URL(databaseUrl());
    listenUrl.searchParams.set("application_name", `atkl_${schema}`);
    const make = () =>
      createRealtime({
        connectionString: url.toString(),
        listenConnectionString: listenUrl.toString(),
        schema,
        logger: quiet,
        heartbeatMs: 2_000,
      });
    const p1 = make();
    const p2 = make();
    cleanups.push(() => p1.close());
    cleanups.push(() => p2.close());
    await p1.migrate();
    await Promise.all([p1.ready(), p2.ready()]);
    const s1 = await serveRealtime(p1);
    const s2 = await serveRealtime(p2);
    cleanups.push(() => s1.close());
    cleanups.push(() => s2.close());
    const db = new pg.Pool({ connectionString: databaseUrl(), max: 8 });
    cleanups.push(() => db.end());
    const admin = new pg.Pool({ connectionString: databaseUrl(), max: 1 });
    cleanups.push(() => admin.end());

    const clients = [
      new ResumingClient(`${s1.url}/realtime/events?user=u1`),
      new ResumingClient(`${s2.url}/realtime/events?user=u1`),
      new ResumingClient(`${s1.url}/realtime/events`),
      new ResumingClient(`${s2.url}/realtime/events?user=u2`),
    ];
    for (const c of clients) {
      await c.connect();
      cleanups.push(() => c.close());
    }
    const written: Written[] = [];
    const until = Date.now() + 8_000;
    const chaos = (async () => {
      for (let i = 0; Date.now() < until; i++) {
        await sleep(100 + Math.random() * 200);
        const victim = clients[i % clients.length] as ResumingClient;
        victim.drop();
        if (i % 3 === 2) {
          await admin.query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            [`atkl_${schema}`],
          );
        }
        if (i % 10 === 9) {
          await admin.query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            [`atk_${schema}`],
          );
        }
      }
    })();
    await Promise.all([
      ...[0, 1, 2, 3, 4, 5].map((n) => writer(n % 2 ? p1 : p2, db, until, written, n)),
      chaos,
    ]);

    const marker = await p1.publishGlobal({ type: "marker", detail: {} });
    let resetCount = 0;
    for (const [index, c] of clients.entries()) {
      const user = index === 3 ? "u2" : index === 2 ? null : "u1";
      await c.until((events) => events.some((e) => e.id === marker.id), `client ${index} marker`, 30_000);
      const expected = written
        .filter((w) => w.userId === null || w.userId === user)
        .map((w) => w.id)
        .sort((a, b) => Number(a) - Number(b));
      const got = c.dispatched.filter((e) => e.type === "e").map((e) => e.id);
      // A pool connection killed mid-replay is a documented reset (replay-failed): the app reloads.
      expect(
        c.resets.filter((r) => r !== "replay-failed"),
        `client ${index} resets`,
      ).toEqual([]);
      const sorted = [...got].sort((a, b) => Number(a) - Number(b));
      if (c.resets.length === 0) expect(sorted, `client ${index} dispatched set`).toEqual(expected);
      else
        expect(expected, `client ${index} dispatched only its own`).toEqual(expect.arrayContaining(sorted));
      resetCount += c.resets.length;
      expect(
        c.dispatched.filter((e) => e.type === "rolled_back"),
        `client ${index}`,
      ).toEqual([]);
      const position = new Map(got.map((id, i) => [id, i]));
      const byId = new Map(written.map((w) => [w.id, w]));
      for (const a of got) {
        for (const b of got) {
          const wa = byId.get(a) as Written;
          const wb = byId.get(b) as Written;
          if (wa.committedAt < wb.writtenAt && (position.get(a) as number) > (position.get(b) as number)) {
            throw new Error(
              `client ${index}: ${b} arrived before ${a}, which committed before ${b} was written`,
            );
          }
        }
      }
    }
    expect(written.length).toBeGreaterThan(50);
    console.log(`stress: ${written.length} events, ${resetCount} replay-failed resets`);
  });
});
