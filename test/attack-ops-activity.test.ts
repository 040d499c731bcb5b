// Attacks on delivery activity and replay: a stuck activity writer must neither delay a delivery nor
// grow without bound; a replay reaches each stream of its audience once, on every process.
import { describe, expect, it, vi } from "vitest";
import { ACTIVITY_MAX_PENDING } from "../src/activity.js";
import { filePool, freshSchema } from "./support/database.js";
import { servedRealtime } from "./support/server.js";
import { openStream } from "./support/sse.js";

const files = filePool(3);

describe("activity and replay under attack", () => {
  it("attack: a locked activity table and a flood of events: every delivery goes out, the tally stays bounded, drops are counted", async () => {
    const { realtime, server, schema } = await servedRealtime();
    const stream = await openStream(`${server.url}/realtime/events`);
    const locker = await files.pool.connect();
    try {
      await locker.query("BEGIN");
      await locker.query(`LOCK TABLE "${schema}"."activity" IN ACCESS EXCLUSIVE MODE`);
      // One event, and the writer of its activity stuck behind the lock before the flood starts.
      await realtime.publishGlobal({ type: "first" });
      await vi.waitFor(
        async () => {
          const { rows } = await files.pool.query<{ n: number }>(
            "SELECT count(*)::int AS n FROM pg_locks WHERE relation = $1::regclass AND NOT granted",
            [`"${schema}"."activity"`],
          );
          expect(rows[0]?.n).toBe(1);
        },
        { timeout: 5_000, interval: 50 },
      );
      // Two entries per event (dispatched, sent to the anonymous stream): well over the bound.
      const count = (3 * ACTIVITY_MAX_PENDING) / 2;
      for (let start = 0; start < count; start += 1000) {
        await Promise.all(
          Array.from({ length: 1000 }, (_, i) =>
            realtime.publishGlobal({ type: "flood", detail: { i: start + i } }),
          ),
        );
      }
      await stream.until(
        (c) => c.events.length === count + 1,
        "every flood event, with activity stuck",
        20_000,
      );
      expect(realtime.stats().activity.dropped).toBeGreaterThan(0);
      await locker.query("COMMIT");
    } finally {
      locker.release();
    }
    // Once the table is free, what was kept is written; kept + dropped is every entry.
    await vi.waitFor(
      () => {
        const { written, dropped } = realtime.stats().activity;
        expect(written + dropped).toBe(3 * ACTIVITY_MAX_PENDING + 2);
      },
      { timeout: 10_000, interval: 100 },
    );
    // At most the batch stuck at the lock and one full tally behind it were kept.
    expect(realtime.stats().activity.written).toBeLessThanOrEqual(2 * ACTIVITY_MAX_PENDING);
  }, 40_000);

  it("attack: replaying a user event reaches each of that user's streams once, on two processes", async () => {
    const schema = freshSchema("replay2");
    const one = await servedRealtime({ schema });
    const two = await servedRealtime({ schema });
    const original = await one.realtime.publish({
      userId: 7,
      type: "task_complete",
      detail: { n: 1 },
      privateData: { secret: "never replayed" },
    });
    // Both processes are past the original before the streams open: they start live after it.
    await vi.waitFor(() => {
      expect(one.handled.map((e) => e.id)).toContain(original.id);
      expect(two.handled.map((e) => e.id)).toContain(original.id);
    });
    const streams = await Promise.all([
      openStream(`${one.server.url}/realtime/events?user=7`),
      openStream(`${two.server.url}/realtime/events?user=7`),
      openStream(`${two.server.url}/realtime/events?user=8`),
    ]);
    const [replay, again] = (await one.realtime.replay([original.id, original.id])) as unknown as [
      { id: string; replayOf: string },
      { id: string },
    ];
    expect(replay.replayOf).toBe(original.id);
    const ofReplay = (await two.realtime.replay(replay.id)) as { replayOf: string; id: string };
    expect(ofReplay.replayOf).toBe(replay.id);
    const marker = await one.realtime.publishGlobal({ type: "marker" });
    for (const stream of streams)
      await stream.until((c) => c.events.some((e) => e.id === marker.id), "marker");
    const [first, second, stranger] = streams.map((s) => s.events.map((e) => e.id));
    expect(first).toEqual([replay.id, again.id, ofReplay.id, marker.id]);
    expect(second).toEqual([replay.id, again.id, ofReplay.id, marker.id]);
    expect(stranger).toEqual([marker.id]);
    expect((await one.realtime.events.get(replay.id))?.privateData).toBeNull();
    const replayed = (await one.realtime.events.activity(original.id)).filter((e) => e.kind === "replayed");
    expect(replayed.map((e) => e.replayId)).toEqual([replay.id, again.id]);
  });

  it("attack: replay of 1000 ids with one pruned among them replays nothing; without it, all in order", async () => {
    const { realtime, schema } = await servedRealtime();
    const published = [];
    for (let start = 0; start < 1000; start += 500) {
      published.push(
        ...(await Promise.all(
          Array.from({ length: 500 }, (_, i) =>
            realtime.publishGlobal({ type: "many", detail: { i: start + i } }),
          ),
        )),
      );
    }
    const ids = published.map((event) => event.id);
    await files.pool.query(`DELETE FROM "${schema}"."events" WHERE id = $1`, [ids[500]]);
    await expect(realtime.replay(ids)).rejects.toMatchObject({ code: "NOT_FOUND" });
    const { rows } = await files.pool.query(
      `SELECT count(*)::int AS n FROM "${schema}"."events" WHERE replay_of IS NOT NULL`,
    );
    expect(rows[0].n).toBe(0);
    const kept = ids.filter((_, i) => i !== 500);
    const replays = (await realtime.replay(kept)) as Array<{ replayOf: string }>;
    expect(replays.map((event) => event.replayOf)).toEqual(kept);
  });
});
