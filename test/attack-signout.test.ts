// attack: sign-out. "After disconnectUser(id) resolves, no event reaches that user's old streams on any
// process, including events published right after." A stream that was open (registered, resuming)
// before the sign-out, on a process whose receiver lags (a slow onReceive) and whose pool is busy.
import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import { createRealtime, type Realtime } from "../src/index.js";
import { databaseUrl, freshSchema } from "./support/database.js";
import { serveRealtime } from "./support/server.js";
import { SseClient } from "./support/sse.js";

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

describe("attack: sign-out", () => {
  it("attack: an old stream replaying behind a lagging receiver never gets an event published after disconnectUser resolved", async () => {
    const schema = freshSchema("atk_so");
    const connectionString = databaseUrl();
    // The application's pool, one connection: the app's own queries keep it busy for a moment.
    const appPool = new pg.Pool({ connectionString, max: 1 });
    let releaseTrap!: () => void;
    const trapReleased = new Promise<void>((resolve) => {
      releaseTrap = resolve;
    });
    let trapHit!: () => void;
    const trapSeen = new Promise<void>((resolve) => {
      trapHit = resolve;
    });
    let trapped = false;
    const p: Realtime = createRealtime({
      pool: appPool,
      schema,
      logger: quiet,
      hookTimeoutMs: 20_000,
      // A slow onReceive (a lookup) on one event: this process's receiver lags behind the table.
      async onReceive(event) {
        if (event.type === "slow" && !trapped) {
          trapped = true;
          trapHit();
          await trapReleased;
        }
        return event;
      },
    });
    const q: Realtime = createRealtime({ connectionString, schema, logger: quiet });
    cleanups.push(() => appPool.end());
    cleanups.push(() => q.close());
    cleanups.push(() => p.close());
    cleanups.push(() => releaseTrap());
    await p.migrate();
    await Promise.all([p.ready(), q.ready()]);
    const server = await serveRealtime(p);
    cleanups.push(() => server.close());

    const before = await q.publish({ userId: "u1", type: "before", detail: {} });
    await q.publishGlobal({ type: "slow", detail: {} });
    await trapSeen;

    // The app's own query holds the pool's only connection.
    const held = await appPool.connect();
    let heldReleased = false;
    cleanups.push(() => {
      if (!heldReleased) held.release();
    });
    const stream = await SseClient.open(`${server.url}/realtime/events?user=u1`, {
      headers: { "Last-Event-ID": before.id },
    });
    cleanups.push(() => stream.close());
    expect(stream.response.status).toBe(200);
    await stream.next("connected");

    // Sign-out, from another process, then an event for that user right after.
    await q.disconnectUser("u1");
    const _after = await q.publish({ userId: "u1", type: "after_signout", detail: { secret: "x" } });

    held.release();
    heldReleased = true;
    // Whatever happens, the old stream must not get `after`. Nothing may arrive, so this waits a bounded
    // while for an absence, then lets the receiver go on and waits for the sign-out to cut the stream.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(stream.events.map((e) => e.type)).not.toContain("after_signout");
    releaseTrap();
    await stream.until((s) => s.ended, "the stream to be cut by the sign-out", 8_000);
    expect(
      stream.events.map((e) => e.type),
      "events the signed-out stream carried",
    ).not.toContain("after_signout");
  });
});
