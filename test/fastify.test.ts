// Fastify 5 with the plugin as the README registers it, on an ephemeral port, read by a real SSE client.
// Fastify's own log is captured for every app: a hijacked reply that Fastify also tried to answer shows
// there as "Reply was already sent".
import cors from "@fastify/cors";
import Fastify, { type FastifyInstance, type FastifyRequest } from "fastify";
import { describe, expect, it, onTestFinished } from "vitest";
import { type RealtimePluginOptions, realtimePlugin } from "../src/adapters/fastify.js";
import { createAdmin } from "../src/admin/index.js";
import type { Logger, Realtime, RealtimeOptions } from "../src/index.js";
import { staffOnly, staffSession } from "./support/admin.js";
import { migratedRealtime } from "./support/server.js";
import { cursorPattern, openStream, SseClient } from "./support/sse.js";

declare module "fastify" {
  interface FastifyRequest {
    user: string | null;
  }
}

interface LogLine {
  level: number;
  msg?: string;
  err?: { message?: string };
}

type Configure = (app: FastifyInstance, realtime: Realtime) => Promise<void> | void;

/** `x-user` signs the stream in, through a property an onRequest hook decorates the request with. */
const byDecoratedUser: Configure = async (app, realtime) => {
  app.decorateRequest("user", null);
  app.addHook("onRequest", async (request, reply) => {
    request.user = (request.headers["x-user"] as string | undefined) ?? null;
    reply.header("x-from-hook", "1");
  });
  await app.register(realtimePlugin, { realtime, authenticate: (request) => request.user });
};

async function fastifyServing(
  configure: Configure = byDecoratedUser,
  options: Partial<RealtimeOptions> = {},
) {
  const { realtime } = await migratedRealtime(options);
  onTestFinished(() => realtime.close());
  const logs: LogLine[] = [];
  const app = Fastify({
    logger: { level: "trace", stream: { write: (line: string) => void logs.push(JSON.parse(line)) } },
  });
  await configure(app, realtime);
  const url = await app.listen({ port: 0, host: "127.0.0.1" });
  onTestFinished(() => {
    // Undici opens a spare connection after an aborted fetch, which sends no request and is therefore
    // never "idle" to Node: app.close() would wait ~4 s for undici to drop it. Streams are ended by
    // app.close() itself (tested on its own below).
    app.server.closeAllConnections();
    return app.close();
  });
  await realtime.ready();
  return { realtime, app, url, logs };
}

/** Waits until no stream is open; `connectionCount` changes without an event to wait on. */
async function closedAll(realtime: Realtime): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (realtime.connectionCount > 0) {
    if (Date.now() > deadline) throw new Error(`${realtime.connectionCount} streams still open after 5 s`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Fastify complaining about our replies: "Reply was already sent", or anything at warn and above. */
function complaints(logs: LogLine[]): LogLine[] {
  return logs.filter((line) => line.level >= 40 || /already sent/i.test(`${line.msg} ${line.err?.message}`));
}

async function stream(url: string, user?: string, lastEventId?: string): Promise<SseClient> {
  const headers: Record<string, string> = {};
  if (user) headers["x-user"] = user;
  if (lastEventId) headers["Last-Event-ID"] = lastEventId;
  const client = await SseClient.open(url, { headers });
  onTestFinished(() => client.close());
  expect(client.response.status).toBe(200);
  await client.next("connected");
  return client;
}

describe("Fastify 5 plugin", () => {
  it("delivers live events scoped to two users and an anonymous stream, with the hook's header", async () => {
    const { realtime, url, logs } = await fastifyServing();
    const alice = await stream(`${url}/realtime/events`, "alice");
    const bob = await stream(`${url}/realtime/events`, "bob");
    const anonymous = await stream(`${url}/realtime/events`);
    expect(JSON.parse((await alice.next("connected")).data)).toEqual({ userId: "alice" });
    expect(JSON.parse((await anonymous.next("connected")).data)).toEqual({ userId: null });
    expect(alice.response.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    expect(alice.response.headers.get("x-from-hook")).toBe("1");
    expect(realtime.connectionCount).toBe(3);

    const forAlice = await realtime.publish({ userId: "alice", type: "for_alice", detail: { n: 1 } });
    const forBob = await realtime.publish({ userId: "bob", type: "for_bob" });
    const everyone = await realtime.publishGlobal({ type: "everyone" });
    await alice.waitForEvents(2);
    await bob.waitForEvents(2);
    await anonymous.waitForEvents(1);
    expect(alice.events.map((e) => e.id)).toEqual([forAlice.id, everyone.id]);
    expect(alice.events[0]).toEqual({ id: forAlice.id, type: "for_alice", scope: "user", detail: { n: 1 } });
    expect(bob.events.map((e) => e.id)).toEqual([forBob.id, everyone.id]);
    expect(anonymous.events.map((e) => e.id)).toEqual([everyone.id]);
    expect(complaints(logs)).toEqual([]);
  });

  it("hands authenticate Fastify's own request, sync or async", async () => {
    const seen: FastifyRequest[] = [];
    const { url } = await fastifyServing(async (app, realtime) => {
      app.decorateRequest("user", null);
      app.addHook("preHandler", async (request) => {
        request.user = "from-hook";
      });
      await app.register(realtimePlugin, {
        realtime,
        authenticate: async (request) => {
          seen.push(request);
          return `${request.user}:${request.headers["x-tenant"]}`;
        },
      });
    });
    const client = await SseClient.open(`${url}/realtime/events`, { headers: { "x-tenant": "t1" } });
    onTestFinished(() => client.close());
    expect(JSON.parse((await client.next("connected")).data)).toEqual({ userId: "from-hook:t1" });
    expect(seen).toHaveLength(1);
    expect(seen[0]?.routeOptions.url).toBe("/realtime/events");
    expect(typeof seen[0]?.id).toBe("string");
  });

  it("resumes from Last-Event-ID with the events missed, in order", async () => {
    const { realtime, url } = await fastifyServing();
    const first = await stream(`${url}/realtime/events`, "alice");
    const seen = await realtime.publish({ userId: "alice", type: "seen" });
    await first.waitForEvents(1);
    const cursor = first.messages.find((m) => m.event === "message")?.id as string;
    expect(cursor).toMatch(cursorPattern(seen.id));
    first.close();
    await closedAll(realtime);

    const missed = [
      await realtime.publish({ userId: "alice", type: "missed_1" }),
      await realtime.publishGlobal({ type: "missed_2" }),
    ];
    await realtime.publish({ userId: "bob", type: "not_hers" });
    const resumed = await stream(`${url}/realtime/events`, "alice", cursor);
    await resumed.waitForEvents(2);
    expect(resumed.events.map((e) => e.id)).toEqual(missed.map((e) => e.id));
  });

  it("cleans up an aborted stream: connectionCount back to 0, and the server keeps serving", async () => {
    const { realtime, url, logs } = await fastifyServing();
    const clients = [await stream(`${url}/realtime/events`, "alice"), await stream(`${url}/realtime/events`)];
    expect(realtime.connectionCount).toBe(2);
    for (const client of clients) client.close();
    await closedAll(realtime);
    const again = await stream(`${url}/realtime/events`, "alice");
    expect(realtime.connectionCount).toBe(1);
    again.close();
    await closedAll(realtime);
    expect(complaints(logs)).toEqual([]);
  });

  it("serves the stream, client.js and the admin under the register prefix, and nothing outside it", async () => {
    const { realtime, url } = await fastifyServing(async (app, realtime) => {
      createAdmin(realtime, { authorize: () => true });
      await app.register(realtimePlugin, { realtime, prefix: "/api" });
    });
    const client = await openStream(`${url}/api/realtime/events`);
    const sent = await realtime.publishGlobal({ type: "prefixed" });
    await client.waitForEvents(1);
    expect(client.events.map((e) => e.id)).toEqual([sent.id]);

    const script = await fetch(`${url}/api/realtime/client.js`);
    expect(script.status).toBe(200);
    const direct = await realtime.handler(new Request("http://app.test/realtime/client.js"));
    expect(await script.text()).toBe(await direct.text());
    const admin = await fetch(`${url}/api/realtime/admin`);
    expect(admin.status).toBe(200);
    expect(await admin.text()).toContain("prefixed");
    const css = await fetch(`${url}/api/realtime/admin/admin.css`);
    expect(css.status).toBe(200);
    await css.arrayBuffer();
    for (const path of ["/realtime/events", "/realtime/client.js", "/api/realtime/other"]) {
      const response = await fetch(`${url}${path}`);
      expect(response.status, path).toBe(404);
      await response.arrayBuffer();
    }
  });

  it("serves the admin page and its urlencoded replay form, which Fastify's own parsers would refuse", async () => {
    const { realtime, url } = await fastifyServing(async (app, realtime) => {
      createAdmin(realtime, { authorize: staffOnly });
      await app.register(realtimePlugin, { realtime });
    });
    const watcher = await openStream(`${url}/realtime/events`);
    const original = await realtime.publishGlobal({ type: "to_replay" });
    await watcher.waitForEvents(1);
    expect((await fetch(`${url}/realtime/admin`)).status).toBe(403);
    const session = await staffSession(`${url}/realtime/admin`);
    const list = await session.get("");
    expect(list.status).toBe(200);
    expect(await list.text()).toContain("to_replay");
    const replayed = await session.replay([
      ["csrf", session.token],
      ["id", original.id],
    ]);
    expect(replayed.status).toBe(303);
    await watcher.waitForEvents(2);
    expect(watcher.events.map((e) => e.type)).toEqual(["to_replay", "to_replay"]);
  });

  it("keeps @fastify/cors headers on the stream and on client.js", async () => {
    const origin = "https://app.example";
    const { url } = await fastifyServing(async (app, realtime) => {
      await app.register(cors, { origin, credentials: true });
      await app.register(realtimePlugin, { realtime });
    });
    const client = await SseClient.open(`${url}/realtime/events`, { headers: { Origin: origin } });
    onTestFinished(() => client.close());
    await client.next("connected");
    expect(client.response.headers.get("access-control-allow-origin")).toBe(origin);
    expect(client.response.headers.get("access-control-allow-credentials")).toBe("true");
    expect(client.response.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    const script = await fetch(`${url}/realtime/client.js`, { headers: { Origin: origin } });
    expect(script.headers.get("access-control-allow-origin")).toBe(origin);
    await script.arrayBuffer();
  });

  it("answers HEAD, 304, 405 and refusals without Fastify logging 'Reply was already sent'", async () => {
    const errors: unknown[] = [];
    const logger: Logger = { debug() {}, info() {}, warn() {}, error: (...args) => errors.push(args[0]) };
    const authenticate = (request: FastifyRequest) => (request.headers["x-fail"] ? {} : null) as never;
    const { realtime, url, logs } = await fastifyServing(
      async (app, realtime) => {
        await app.register(realtimePlugin, { realtime, authenticate });
      },
      { logger },
    );
    const head = await fetch(`${url}/realtime/events`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe("");
    const script = await fetch(`${url}/realtime/client.js`);
    const etag = script.headers.get("etag") as string;
    await script.arrayBuffer();
    const cached = await fetch(`${url}/realtime/client.js`, { headers: { "If-None-Match": etag } });
    expect(cached.status).toBe(304);
    const post = await fetch(`${url}/realtime/events`, { method: "POST", body: "x" });
    expect(post.status).toBe(405);
    expect(post.headers.get("allow")).toBe("GET, HEAD");
    expect(await post.text()).toBe("Method not allowed\n");
    const refused = await fetch(`${url}/realtime/events`, { headers: { "x-fail": "1" } });
    expect(refused.status).toBe(500);
    await refused.arrayBuffer();
    expect(errors).toEqual([{ err: expect.any(TypeError) }]);
    const client = await stream(`${url}/realtime/events`);
    client.close();
    await closedAll(realtime);
    // The capture works: Fastify logged each request coming in.
    expect(logs.filter((line) => line.msg === "incoming request").length).toBeGreaterThanOrEqual(6);
    expect(complaints(logs)).toEqual([]);
  });

  it("app.close() ends open streams promptly, then realtime.close() is clean", async () => {
    const { realtime, app, url, logs } = await fastifyServing();
    const client = await stream(`${url}/realtime/events`, "alice");
    // Fastify waits for open connections: without the plugin ending its streams this never resolves.
    let deadline: NodeJS.Timeout | undefined;
    const stuck = new Promise((_, reject) => {
      deadline = setTimeout(() => reject(new Error("app.close() still pending after 3 s")), 3_000);
    });
    await Promise.race([app.close(), stuck]).finally(() => clearTimeout(deadline));
    await client.until((c) => c.ended, "the stream to end");
    await closedAll(realtime);
    await realtime.close();
    expect(realtime.listenerState).toBe("closed");
    expect(complaints(logs)).toEqual([]);
  });

  it("realtime.close() ends the streams, and app.close() after it resolves", async () => {
    const { realtime, app, url } = await fastifyServing();
    const client = await stream(`${url}/realtime/events`);
    await realtime.close();
    await client.until((c) => c.ended, "the stream to end");
    await app.close();
    expect(realtime.connectionCount).toBe(0);
  });

  it.each([
    ["a missing realtime", {}, /realtime option is required/],
    ["an unknown option", { realtime: "R", authenticat: () => null }, /unknown option "authenticat"/],
    ["a non-function authenticate", { realtime: "R", authenticate: "x" }, /authenticate must be a function/],
    ["a foreign realtime", { realtime: {} }, /createRealtime\(\)/],
  ])("refuses %s at register with a TypeError", async (_name, given, message) => {
    const { realtime } = await migratedRealtime();
    onTestFinished(() => realtime.close());
    const options = { ...given } as Record<string, unknown>;
    if (options.realtime === "R") options.realtime = realtime;
    const app = Fastify();
    onTestFinished(() => app.close());
    const registered = app.register(realtimePlugin, options as unknown as RealtimePluginOptions).ready();
    await expect(registered).rejects.toThrow(TypeError);
    await expect(registered).rejects.toThrow(message);
  });
});
