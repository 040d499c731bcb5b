// attack: pruning. "A client whose cursor lies below a deleted id gets a reset" — but a client can lack
// an event *below* its cursor (a lower id whose transaction committed after the cursor's event was
// written). Deleting that row leaves the pruning mark below the cursor: the resume is silent.
import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import type { Realtime } from "../src/index.js";
import { databaseUrl } from "./support/database.js";
import { migratedRealtime, serveRealtime } from "./support/server.js";
import { SseClient } from "./support/sse.js";
import { cursorOf } from "./support/wire.js";

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

describe("attack: pruning", () => {
  it("attack: a deleted row below the cursor that the client never got makes the resume a reset, never a silent skip", async () => {
    const { realtime, schema }: { realtime: Realtime; schema: string } = await migratedRealtime();
    cleanups.push(() => realtime.close());
    await realtime.ready();
    const server = await serveRealtime(realtime);
    cleanups.push(() => server.close());
    const db = new pg.Pool({ connectionString: databaseUrl(), max: 2 });
    cleanups.push(() => db.end());

    const first = await SseClient.open(`${server.url}/realtime/events`);
    cleanups.push(() => first.close());
    await first.next("connected");

    // A transaction that publishes, then stays open while another commits after it.
    const slow = await db.connect();
    cleanups.push(() => slow.release());
    await slow.query("BEGIN");
    const lower = await realtime.publishGlobal({ type: "noisy", detail: {} }, { client: slow });
    const higher = await realtime.publishGlobal({ type: "kept", detail: {} });
    await first.until((s) => s.events.some((e) => e.id === higher.id), "the higher event");
    const cursor = cursorOf(first, higher.id);
    first.close();
    await slow.query("COMMIT");

    // The app prunes one type of event (README: "You may delete old rows yourself").
    await db.query(`DELETE FROM "${schema}".events WHERE type = 'noisy'`);
    const marker = await realtime.publishGlobal({ type: "marker", detail: {} });

    const resumed = await SseClient.open(`${server.url}/realtime/events`, {
      headers: { "Last-Event-ID": cursor },
    });
    cleanups.push(() => resumed.close());
    // A reset goes on from the newest event, the marker included: then the marker is not sent again.
    await resumed.until(
      (s) => s.events.some((e) => e.id === marker.id) || s.messages.some((m) => m.event === "reset"),
      "the marker or a reset",
    );
    const got = resumed.events.some((e) => e.id === lower.id);
    const reset = resumed.messages.find((m) => m.event === "reset");
    expect(
      { got, reset: reset ? JSON.parse(reset.data).reason : null },
      `event ${lower.id} (committed after ${higher.id}'s cursor, deleted before the resume)`,
    ).not.toEqual({ got: false, reset: null });
  });
});
