import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Realtime, RealtimeEvent } from "../src/index.js";
import { runTs } from "./support/process.js";
import { migratedRealtime, serveRealtime } from "./support/server.js";
import { SseClient } from "./support/sse.js";

type Server = Awaited<ReturnType<typeof serveRealtime>>;

/** The stream's view of an event: what SPEC says a browser gets. */
const wire = (e: RealtimeEvent) => ({ id: e.id, type: e.type, scope: e.scope, detail: e.detail });

describe("scoping: two users and an anonymous client", () => {
  let realtime: Realtime;
  let server: Server;
  let connectionString: string;
  let schema: string;
  beforeAll(async () => {
    ({ realtime, connectionString, schema } = await migratedRealtime());
    server = await serveRealtime(realtime);
  });
  afterAll(async () => {
    await realtime.close();
    await server.close();
  });

  async function clients() {
    const [alice, bob, anonymous] = await Promise.all([
      SseClient.open(`${server.url}/realtime/events?user=alice`),
      SseClient.open(`${server.url}/realtime/events?user=42`),
      SseClient.open(`${server.url}/realtime/events`),
    ]);
    await Promise.all([alice, bob, anonymous].map((c) => c?.next("connected")));
    return { alice: alice as SseClient, bob: bob as SseClient, anonymous: anonymous as SseClient };
  }

  function expectScoped(
    streams: { alice: SseClient; bob: SseClient; anonymous: SseClient },
    published: RealtimeEvent[],
  ) {
    const of = (user: string | null) =>
      published.filter((e) => e.scope === "global" || (e.scope === "user" && e.userId === user)).map(wire);
    expect(streams.alice.events).toEqual(of("alice"));
    expect(streams.bob.events).toEqual(of("42"));
    expect(streams.anonymous.events).toEqual(of(null));
    for (const stream of Object.values(streams)) {
      expect(stream.chunks.map((c) => c.text).join("")).not.toContain("secret");
      for (const message of stream.messages.filter((m) => m.event === "message")) {
        expect(message.data).not.toContain("userId");
      }
      stream.close();
    }
  }

  it("sends each user only their own events, everyone the global ones, nobody the system ones", async () => {
    const streams = await clients();
    expect(JSON.parse(streams.alice.messages[0]?.data ?? "")).toEqual({ userId: "alice" });
    expect(JSON.parse(streams.bob.messages[0]?.data ?? "")).toEqual({ userId: "42" });
    expect(JSON.parse(streams.anonymous.messages[0]?.data ?? "")).toEqual({ userId: null });
    const published = [
      await realtime.publish({
        userId: "alice",
        type: "for_alice",
        detail: { n: 1 },
        privateData: { secret: 1 },
      }),
      await realtime.publish({ userId: 42, type: "for_bob", detail: { n: 2 } }),
      await realtime.publishSystem({ type: "system_only", detail: { secret: 3 }, userId: "alice" }),
      await realtime.publish({ userId: "042", type: "for_someone_else", detail: { n: 4 } }),
      await realtime.publishGlobal({ type: "for_all", detail: { n: 5 }, privateData: { secret: 5 } }),
    ];
    // The global event is last and delivery follows commit order: once it is in, everything is.
    await Promise.all(
      Object.values(streams).map((s) =>
        s.until((c) => c.events.some((e) => e.type === "for_all"), "for_all"),
      ),
    );
    expectScoped(streams, published);
  });

  it("routes events published by another OS process", async () => {
    const streams = await clients();
    const received: RealtimeEvent[] = [];
    const unsubscribe = realtime.subscribe((event) => received.push(event));
    const calls = [
      {
        method: "publish",
        input: { userId: "alice", type: "for_alice", detail: { s: "a\nb" }, privateData: { secret: 1 } },
      },
      { method: "publish", input: { userId: 42, type: "for_bob", detail: { ":id": 7 } } },
      { method: "publishSystem", input: { type: "system_only", detail: { secret: 2 } } },
      { method: "publishGlobal", input: { type: "for_all", detail: { x: [1, { y: null }] } } },
    ];
    const output = await runTs(new URL("./fixtures/publisher.ts", import.meta.url), [
      connectionString,
      schema,
      JSON.stringify(calls),
    ]);
    const published = (JSON.parse(output) as RealtimeEvent[]).map((e) => ({
      ...e,
      createdAt: new Date(e.createdAt),
    }));
    expect(published.map((e) => e.type)).toEqual(["for_alice", "for_bob", "system_only", "for_all"]);
    await Promise.all(
      Object.values(streams).map((s) =>
        s.until((c) => c.events.some((e) => e.type === "for_all"), "for_all"),
      ),
    );
    expectScoped(streams, published);
    // Backend subscribers get every scope, system included, with the same event the publisher stored.
    await expect.poll(() => received.length).toBe(4);
    expect(received).toEqual(published);
    unsubscribe();
  });
});
