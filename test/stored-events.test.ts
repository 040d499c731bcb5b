// The stored-event API (events.get / list / activity), replay, delivery activity and stats, against a
// real PostgreSQL with real SSE streams.
import { describe, expect, it, vi } from "vitest";
import { RealtimeError } from "../src/index.js";
import { servedRealtime } from "./support/server.js";
import { openStream } from "./support/sse.js";

/** Activity is written about a second after a delivery: wait for it, never for a fixed time. */
const ACTIVITY_WAIT = { timeout: 10_000, interval: 100 };

describe("events.get and events.activity", () => {
  it("reads an event back with its private data, and its status follows the delivery", async () => {
    const { realtime, server } = await servedRealtime();
    const published = await realtime.publishSystem({
      type: "audit",
      userId: 7,
      detail: { n: 1 },
      privateData: { secret: "s" },
    });
    await vi.waitFor(
      async () => expect((await realtime.events.get(published.id))?.status).toBe("dispatched"),
      ACTIVITY_WAIT,
    );
    expect(await realtime.events.get(published.id)).toEqual({
      ...published,
      privateData: { secret: "s" },
      replayOf: null,
      status: "dispatched",
    });

    const alice = await openStream(`${server.url}/realtime/events?user=alice`);
    const anonymous = await openStream(`${server.url}/realtime/events`);
    const anonymous2 = await openStream(`${server.url}/realtime/events`);
    const global = await realtime.publishGlobal({ type: "hello" });
    await Promise.all(
      [alice, anonymous, anonymous2].map((s) => s.until((c) => c.events.length === 1, "the event")),
    );
    await vi.waitFor(
      async () => expect((await realtime.events.activity(global.id)).length).toBe(3),
      ACTIVITY_WAIT,
    );
    const activity = await realtime.events.activity(global.id);
    const process = activity[0]?.process;
    expect(process).toMatch(/^.+:\d+:[0-9a-f]{6}$/);
    const byKindAndUser = (
      a: { kind: string; userId: string | null },
      b: { kind: string; userId: string | null },
    ) => a.kind.localeCompare(b.kind) || String(a.userId).localeCompare(String(b.userId));
    expect(activity.map(({ at: _, ...entry }) => entry).sort(byKindAndUser)).toEqual(
      [
        { kind: "dispatched", process, userId: null, connections: 3, resumed: false, replayId: null },
        { kind: "sent", process, userId: "alice", connections: 1, resumed: false, replayId: null },
        { kind: "sent", process, userId: null, connections: 2, resumed: false, replayId: null },
      ].sort(byKindAndUser),
    );
    expect((await realtime.events.get(global.id))?.status).toBe("sent");
    const stats = realtime.stats();
    expect(stats.connections).toEqual({ total: 3, anonymous: 2, users: 1, topics: 0 });
    expect(stats.events.sent).toBe(3);
    expect(stats.activity.written).toBeGreaterThanOrEqual(4);
  });

  it("answers null and an empty log for an unknown id, and refuses a malformed one", async () => {
    const { realtime } = await servedRealtime();
    expect(await realtime.events.get("999999")).toBeNull();
    expect(await realtime.events.activity("999999")).toEqual([]);
    await expect(realtime.events.get("12a")).rejects.toThrow(/decimal event id/);
    await expect(realtime.events.get(12 as never)).rejects.toThrow(TypeError);
  });

  it("records the delivery of a replayed backlog as resumed", async () => {
    const { realtime, server } = await servedRealtime();
    const first = await realtime.publish({ userId: "u", type: "one" });
    const second = await realtime.publish({ userId: "u", type: "two" });
    const stream = await openStream(`${server.url}/realtime/events?user=u`, first.id);
    await stream.until((c) => c.events.length === 1, "the replayed event");
    await vi.waitFor(
      async () => expect(await realtime.events.activity(second.id)).toHaveLength(2),
      ACTIVITY_WAIT,
    );
    const sent = (await realtime.events.activity(second.id)).find((entry) => entry.resumed);
    expect(sent).toMatchObject({ kind: "sent", userId: "u", connections: 1 });
    expect(realtime.stats().replays).toMatchObject({ total: 1, running: 0, resets: 0 });
  });
});

describe("events.list", () => {
  it("pages newest first by keyset and filters by type, scope, user, status and time", async () => {
    const { realtime } = await servedRealtime({ activity: false });
    const published = [];
    for (let i = 0; i < 5; i++) published.push(await realtime.publish({ userId: i % 2, type: `t${i % 2}` }));
    published.push(await realtime.publishGlobal({ type: "g" }));
    const ids = published.map((e) => e.id).reverse();

    const seen: string[] = [];
    let page = await realtime.events.list({ limit: 2 });
    for (;;) {
      seen.push(...page.events.map((e) => e.id));
      if (!page.next) break;
      page = await realtime.events.list({ limit: 2, before: page.next });
    }
    expect(seen).toEqual(ids);
    const ofType = await realtime.events.list({ type: "t1" });
    expect(ofType.events.map((e) => e.id)).toEqual([published[3]?.id, published[1]?.id]);
    expect(ofType.next).toBeNull();
    expect((await realtime.events.list({ scope: "global" })).events.map((e) => e.type)).toEqual(["g"]);
    expect((await realtime.events.list({ userId: 0 })).events).toHaveLength(3);
    expect((await realtime.events.list({ status: "new" })).events).toHaveLength(6);
    expect((await realtime.events.list({ status: "sent" })).events).toHaveLength(0);
    expect((await realtime.events.list({ after: published[3]?.id })).events).toHaveLength(2);
    const past = new Date(Date.now() - 3_600_000);
    expect(
      (await realtime.events.list({ from: past, to: new Date(Date.now() + 60_000) })).events,
    ).toHaveLength(6);
    expect((await realtime.events.list({ to: past })).events).toHaveLength(0);
  });

  it("refuses unknown filters and malformed values before any query", async () => {
    const { realtime } = await servedRealtime();
    await expect(realtime.events.list({ tpye: "x" } as never)).rejects.toThrow(/unknown filter "tpye"/);
    await expect(realtime.events.list({ scope: "topic" } as never)).rejects.toThrow(/scope must be one of/);
    await expect(realtime.events.list({ status: "done" } as never)).rejects.toThrow(/status must be one of/);
    await expect(realtime.events.list({ limit: 0 })).rejects.toThrow(RangeError);
    await expect(realtime.events.list({ limit: 1001 })).rejects.toThrow(RangeError);
    await expect(realtime.events.list({ before: "x" })).rejects.toThrow(/decimal event id/);
    await expect(realtime.events.list({ from: "yesterday" } as never)).rejects.toThrow(/valid Date/);
  });
});

describe("replay", () => {
  it("sends a new event with replayOf to the original's audience, even to a client that saw the original", async () => {
    const { realtime, server, handled } = await servedRealtime();
    const bob = await openStream(`${server.url}/realtime/events?user=bob`);
    const eve = await openStream(`${server.url}/realtime/events?user=eve`);
    const original = await realtime.publish({
      userId: "bob",
      type: "invoice",
      detail: { n: 1 },
      privateData: { p: 1 },
    });
    await bob.until((c) => c.events.length === 1, "the original");
    const replayed = await realtime.replay(original.id);
    expect(replayed).toMatchObject({
      type: "invoice",
      scope: "user",
      userId: "bob",
      detail: { n: 1 },
      replayOf: original.id,
    });
    expect(BigInt(replayed.id)).toBeGreaterThan(BigInt(original.id));
    await bob.until((c) => c.events.length === 2, "the replay");
    expect(bob.events[1]).toEqual({
      id: replayed.id,
      type: "invoice",
      scope: "user",
      detail: { n: 1 },
      replayOf: original.id,
    });
    await vi.waitFor(() => expect(handled.map((e) => e.id)).toContain(replayed.id));
    expect(handled.find((e) => e.id === replayed.id)?.replayOf).toBe(original.id);
    expect(eve.events).toEqual([]);
    const stored = await realtime.events.get(replayed.id);
    expect(stored).toMatchObject({ replayOf: original.id, privateData: null });
    const log = await realtime.events.activity(original.id);
    expect(log.filter((entry) => entry.kind === "replayed")).toEqual([
      expect.objectContaining({ replayId: replayed.id, process: null }),
    ]);
  });

  it("replays several in order, all or none, and a system event only to subscribers", async () => {
    const { realtime, server, handled } = await servedRealtime();
    const anonymous = await openStream(`${server.url}/realtime/events`);
    const system = await realtime.publishSystem({ type: "sys" });
    const global = await realtime.publishGlobal({ type: "glob" });
    const before = (await realtime.events.list()).events.length;
    const error = await realtime.replay([global.id, "987654321"]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RealtimeError);
    expect(error).toMatchObject({ code: "NOT_FOUND", message: expect.stringContaining("987654321") });
    expect((await realtime.events.list()).events.length).toBe(before);

    const [a, b] = await realtime.replay([system.id, global.id]);
    expect([a?.replayOf, b?.replayOf]).toEqual([system.id, global.id]);
    await vi.waitFor(() => expect(handled.map((e) => e.id)).toEqual(expect.arrayContaining([a?.id, b?.id])));
    await anonymous.until((c) => c.events.some((e) => e.id === b?.id), "the global replay");
    expect(anonymous.events.map((e) => e.id)).toEqual([global.id, b?.id]);
    await expect(realtime.replay([])).rejects.toThrow(TypeError);
    await expect(realtime.replay("1; DROP TABLE x")).rejects.toThrow(TypeError);
  });

  it("is refused without storage", async () => {
    const { realtime } = await servedRealtime({ storage: false });
    await expect(realtime.replay("1")).rejects.toMatchObject({ code: "STORAGE_OFF" });
    await expect(realtime.events.list()).rejects.toMatchObject({ code: "STORAGE_OFF" });
    expect(realtime.stats().listener.state).toBe("listening");
  });
});
