import net from "node:net";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Realtime, RealtimeEvent } from "../src/index.js";
import { databaseUrl } from "./support/database.js";
import { recordingLogger } from "./support/observe.js";
import { migratedRealtime, serveRealtime } from "./support/server.js";
import { SseClient } from "./support/sse.js";

let admin: pg.Pool;
beforeAll(() => {
  admin = new pg.Pool({ connectionString: databaseUrl(), max: 1 });
});
afterAll(() => admin.end());

/** Terminates this schema's LISTEN backend, as an operator or a failover would. */
async function killListener(schema: string): Promise<number> {
  const { rows } = await admin.query(
    "SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity WHERE application_name = $1",
    [`pgrealtime listener ${schema}_events`],
  );
  return rows.filter((r) => r.killed).length;
}

describe("subscribe", () => {
  it("C18 a throwing handler does not stop the others, and is logged with the event id", async () => {
    const logger = recordingLogger();
    const { realtime } = await migratedRealtime({ logger });
    const seen: string[] = [];
    realtime.subscribe(() => seen.push("first"));
    realtime.subscribe(() => {
      throw new Error("handler bug");
    });
    realtime.subscribe(() => seen.push("third"));
    await realtime.ready();
    const event = await realtime.publishGlobal({ type: "t" });
    await expect.poll(() => seen).toEqual(["first", "third"]);
    expect(logger.errors).toHaveLength(1);
    expect(logger.errors[0]?.[0]).toMatchObject({ eventId: event.id, err: { message: "handler bug" } });
    await realtime.close();
  });

  it("C18 an async handler that rejects is logged, and neither crashes the process nor stops the others", async () => {
    const logger = recordingLogger();
    const { realtime } = await migratedRealtime({ logger });
    const seen: string[] = [];
    realtime.subscribe(async () => {
      await Promise.resolve();
      throw new Error("worker failed");
    });
    realtime.subscribe((e) => seen.push(e.id));
    await realtime.ready();
    const event = await realtime.publishSystem({ type: "job" });
    await expect.poll(() => logger.errors.length).toBe(1);
    expect(seen).toEqual([event.id]);
    expect(logger.errors[0]?.[0]).toMatchObject({ eventId: event.id, err: { message: "worker failed" } });
    await realtime.close();
  });

  it("gives handlers a frozen event: one cannot change what the others or the browsers get", async () => {
    const logger = recordingLogger();
    const { realtime } = await migratedRealtime({ logger });
    const server = await serveRealtime(realtime);
    const [one, two] = await Promise.all(
      ["1", "2"].map((user) => SseClient.open(`${server.url}/realtime/events?user=${user}`)),
    );
    await Promise.all([one?.next("connected"), two?.next("connected")]);
    const second: unknown[] = [];
    realtime.subscribe((event) => {
      (event.detail as Record<string, unknown>).auditedBy = "worker-7";
    });
    realtime.subscribe((event) => {
      (event as { scope: string }).scope = "global";
    });
    realtime.subscribe((event) => second.push(structuredClone(event.detail)));
    await realtime.ready();
    const dm = await realtime.publish({ userId: 1, type: "dm", detail: { text: "hi user 1" } });
    const fence = await realtime.publishGlobal({ type: "fence" });
    await two?.until((c) => c.events.some((e) => e.id === fence.id), "the fence");
    await one?.until((c) => c.events.some((e) => e.id === fence.id), "the fence");
    expect(one?.events[0]).toEqual({ id: dm.id, type: "dm", scope: "user", detail: { text: "hi user 1" } });
    expect(two?.events.map((e) => e.id)).toEqual([fence.id]);
    expect(second[0]).toEqual({ text: "hi user 1" });
    // Mutating a frozen object throws in strict mode: logged like any other handler failure.
    expect(logger.errors.length).toBeGreaterThanOrEqual(2);
    one?.close();
    two?.close();
    await realtime.close();
    await server.close();
  });

  it("stops calling a handler after unsubscribe", async () => {
    const { realtime } = await migratedRealtime();
    const seen: string[] = [];
    const unsubscribe = realtime.subscribe((e) => seen.push(e.type));
    const fence: string[] = [];
    realtime.subscribe((e) => fence.push(e.type));
    await realtime.ready();
    await realtime.publishGlobal({ type: "one" });
    await expect.poll(() => seen).toEqual(["one"]);
    unsubscribe();
    await realtime.publishGlobal({ type: "two" });
    await expect.poll(() => fence).toEqual(["one", "two"]);
    expect(seen).toEqual(["one"]);
    await realtime.close();
  });
});

describe("the LISTEN connection", () => {
  it("C06 reconnects by itself after pg_terminate_backend, and all three handlers get the next event", async () => {
    const { realtime, schema } = await migratedRealtime({ heartbeatMs: 500 });
    const got: string[][] = [[], [], []];
    for (const list of got) realtime.subscribe((e) => list.push(e.type));
    await realtime.ready();
    const errors: unknown[] = [];
    realtime.on("error", (error) => errors.push(error));
    const reconnected = new Promise<void>((resolve) => realtime.on("reconnect", resolve));
    expect(await killListener(schema)).toBe(1);
    await reconnected;
    expect(realtime.listenerState).toBe("listening");
    expect(errors).toHaveLength(1);
    await realtime.publishGlobal({ type: "after_reconnect" });
    for (const list of got) await expect.poll(() => list).toEqual(["after_reconnect"]);
    await realtime.close();
  });

  it("keeps open streams open across its own reconnect", async () => {
    const { realtime, schema } = await migratedRealtime({ heartbeatMs: 500 });
    const server = await serveRealtime(realtime);
    const stream = await SseClient.open(`${server.url}/realtime/events`);
    await stream.next("connected");
    const reconnected = new Promise<void>((resolve) => realtime.on("reconnect", resolve));
    expect(await killListener(schema)).toBe(1);
    await reconnected;
    const event = await realtime.publishGlobal({ type: "after_reconnect", detail: { ok: true } });
    await stream.waitForEvents(1);
    expect(stream.events).toEqual([
      { id: event.id, type: "after_reconnect", scope: "global", detail: { ok: true } },
    ]);
    stream.close();
    await realtime.close();
    await server.close();
  });

  it("releases every socket and timer on close, so the process could exit", async () => {
    const { realtime, schema } = await migratedRealtime();
    realtime.subscribe(() => {});
    await realtime.ready();
    await realtime.close();
    const { rows } = await admin.query(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1",
      [`pgrealtime listener ${schema}_events`],
    );
    expect(rows[0].n).toBe(0);
  });
});

describe("hook results", () => {
  it("fail closed: an onReceive result without a scope, or with another id, is dropped, never broadcast", async () => {
    const logger = recordingLogger();
    const { realtime } = await migratedRealtime({
      logger,
      onReceive(event) {
        if (event.type === "no_scope")
          return { id: event.id, type: event.type, detail: event.detail } as never;
        if (event.type === "new_id") return { ...event, id: "1\nevent: reset" };
        if (event.type === "secret") return { ...event, scope: "system" };
        return event;
      },
    });
    const server = await serveRealtime(realtime);
    const [alice, bob] = await Promise.all(
      ["alice", "bob"].map((u) => SseClient.open(`${server.url}/realtime/events?user=${u}`)),
    );
    await Promise.all([alice?.next("connected"), bob?.next("connected")]);
    await realtime.publish({ userId: "alice", type: "no_scope", detail: { text: "for alice only" } });
    await realtime.publish({ userId: "alice", type: "new_id" });
    const secret = await realtime.publish({ userId: "alice", type: "secret" });
    const fence = await realtime.publishGlobal({ type: "fence" });
    await alice?.until((c) => c.events.some((e) => e.id === fence.id), "the fence");
    await bob?.until((c) => c.events.some((e) => e.id === fence.id), "the fence");
    expect(alice?.events.map((e) => e.type)).toEqual(["fence"]);
    expect(bob?.events.map((e) => e.type)).toEqual(["fence"]);
    // Routing follows the stored row: a hook may not re-scope an event, not even to narrow it.
    expect(logger.errors.map((args) => args[1])).toEqual([
      expect.stringContaining("onReceive returned another scope (undefined)"),
      expect.stringContaining("onReceive returned an event with another id"),
      expect.stringContaining('onReceive returned another scope ("system")'),
    ]);
    // The replay applies the same hook and the same routing: the system event stays on the server.
    const resumed = await SseClient.open(`${server.url}/realtime/events?user=alice`, {
      headers: { "Last-Event-ID": String(BigInt(secret.id) - 3n) },
    });
    await resumed.until((c) => c.events.some((e) => e.id === fence.id), "the fence");
    expect(resumed.events.map((e) => e.type)).toEqual(["fence"]);
    for (const stream of [alice, bob, resumed]) stream?.close();
    await realtime.close();
    await server.close();
  });
});

describe("the start-up probe", () => {
  it("does not mistake a slow connection to the server for a swallowed notification", {
    timeout: 30_000,
  }, async () => {
    // Every new connection through this proxy waits 2.5 s before it reaches PostgreSQL, like a server
    // that is slow to accept connections at boot.
    const upstream = new URL(databaseUrl());
    const proxy = net.createServer((socket) => {
      socket.on("error", () => {});
      setTimeout(() => {
        const server = net.connect(Number(upstream.port || 5432), upstream.hostname);
        server.on("error", () => socket.destroy());
        socket.pipe(server).pipe(socket);
      }, 2_500);
    });
    await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
    const slow = new URL(databaseUrl());
    slow.hostname = "127.0.0.1";
    slow.port = String((proxy.address() as net.AddressInfo).port);
    const { realtime } = await migratedRealtime({ listenConnectionString: slow.toString() });
    const got: string[] = [];
    realtime.subscribe((e) => got.push(e.id));
    await realtime.ready();
    expect(realtime.listenerState).toBe("listening");
    const event = await realtime.publishGlobal({ type: "through_the_slow_path" });
    await expect.poll(() => got).toEqual([event.id]);
    await realtime.close();
    await new Promise((resolve) => proxy.close(resolve));
  });
});

describe("hooks", () => {
  let realtime: Realtime;
  let server: Awaited<ReturnType<typeof serveRealtime>>;
  const logger = recordingLogger();
  const received: RealtimeEvent[] = [];
  beforeAll(async () => {
    ({ realtime } = await migratedRealtime({
      logger,
      // Async on purpose: order must hold even when a hook awaits.
      async onReceive(event) {
        if (event.type === "drop_me") return null;
        if (event.type === "explode") throw new Error("onReceive bug");
        if (event.type === "slow") await new Promise((resolve) => setTimeout(resolve, 50));
        return { ...event, detail: { ...event.detail, stamped: true } };
      },
      beforeSend(event, { userId }) {
        if (userId === "mallory" && event.type === "secret") return null;
        // A Promise is a mistake (beforeSend is synchronous): refused and logged, never sent as an event.
        if (userId === "async") return Promise.resolve(event) as never;
        if (userId === "crash") throw new Error("beforeSend bug");
        (event.detail as Record<string, unknown>).for = userId;
        return event;
      },
    }));
    realtime.subscribe((event) => received.push(event));
    server = await serveRealtime(realtime);
  });
  afterAll(async () => {
    await realtime.close();
    await server.close();
  });

  it("onReceive changes or drops events once per process, keeping order; beforeSend works on per-connection copies", async () => {
    const streams = await Promise.all(
      ["alice", "mallory", "crash", "async"].map((u) =>
        SseClient.open(`${server.url}/realtime/events?user=${u}`),
      ),
    );
    await Promise.all(streams.map((s) => s.next("connected")));
    const [alice, mallory, crash, asyncHook] = streams as [SseClient, SseClient, SseClient, SseClient];
    await realtime.publishGlobal({ type: "slow", detail: { n: 1 } });
    await realtime.publishGlobal({ type: "drop_me" });
    await realtime.publishGlobal({ type: "explode" });
    await realtime.publishGlobal({ type: "secret", detail: { n: 2 } });
    await realtime.publishGlobal({ type: "last", detail: { n: 3 } });
    await alice.until((c) => c.events.some((e) => e.type === "last"), "last");
    await mallory.until((c) => c.events.some((e) => e.type === "last"), "last");

    expect(received.map((e) => e.type)).toEqual(["slow", "secret", "last"]);
    expect(received.every((e) => (e.detail as Record<string, unknown>).stamped === true)).toBe(true);
    // beforeSend's changes stayed on each connection's own copy.
    expect(received.some((e) => "for" in e.detail)).toBe(false);
    expect(alice.events.map((e) => [e.type, e.detail])).toEqual([
      ["slow", { n: 1, stamped: true, for: "alice" }],
      ["secret", { n: 2, stamped: true, for: "alice" }],
      ["last", { n: 3, stamped: true, for: "alice" }],
    ]);
    expect(mallory.events.map((e) => e.type)).toEqual(["slow", "last"]);
    // A throwing beforeSend skips that one connection only.
    expect(crash.events).toEqual([]);
    expect(asyncHook.events).toEqual([]);
    expect(asyncHook.chunks.map((c) => c.text).join("")).not.toContain("undefined");
    expect(logger.errors.map((args) => (args[0] as { err: Error }).err.message)).toContain(
      "beforeSend must return the event or null synchronously, not a Promise",
    );
    expect(logger.errors.map((args) => args[1])).toEqual(
      expect.arrayContaining([
        expect.stringContaining("onReceive threw"),
        expect.stringContaining("beforeSend threw"),
      ]),
    );
    for (const s of streams) s.close();
  });
});
