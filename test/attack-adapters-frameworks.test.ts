// Attacks on what each framework adds around the adapter: Fastify's prefix and @fastify/cors, Hono's
// fall-through (HEAD and OPTIONS included), Next handlers given foreign URLs, Koa middleware around ours.
import cors from "@fastify/cors";
import { getRequestListener } from "@hono/node-server";
import Fastify, { type FastifyRequest } from "fastify";
import { Hono } from "hono";
import { cors as honoCors } from "hono/cors";
import Koa from "koa";
import { describe, expect, it, onTestFinished } from "vitest";
import { realtimePlugin } from "../src/adapters/fastify.js";
import { realtimeMiddleware } from "../src/adapters/hono.js";
import { createRouteHandlers } from "../src/adapters/next.js";
import { toNodeHandler } from "../src/adapters/node.js";
import { listen, migratedRealtime } from "./support/server.js";
import { openStream, SseClient } from "./support/sse.js";

async function instance() {
  const { realtime } = await migratedRealtime();
  onTestFinished(() => realtime.close());
  return realtime;
}

async function fastifyApp(configure: (app: ReturnType<typeof Fastify>) => Promise<void>) {
  const app = Fastify();
  await configure(app);
  const url = await app.listen({ port: 0, host: "127.0.0.1" });
  onTestFinished(() => {
    app.server.closeAllConnections();
    return app.close();
  });
  return url;
}

describe("Fastify", () => {
  it("attack: under a prefix only {prefix}{basePath}/… is ours; the bare path and prefix look-alikes are not", async () => {
    const realtime = await instance();
    const asked: string[] = [];
    const url = await fastifyApp(async (app) => {
      await app.register(realtimePlugin, {
        realtime,
        prefix: "/api",
        authenticate: (request: FastifyRequest) => {
          asked.push(request.url);
          return null;
        },
      });
      app.get("/realtime/events", async () => "the app's own route");
    });
    await realtime.ready();
    const stream = await openStream(`${url}/api/realtime/events`);
    expect(realtime.connectionCount).toBe(1);
    stream.close();
    // The app's route at the bare path is the app's, not ours.
    expect(await (await fetch(`${url}/realtime/events`)).text()).toBe("the app's own route");
    for (const path of [
      "/apiX/realtime/events",
      "/api/realtimeX/events",
      "/api/realtime/events/",
      "/ap/realtime/events",
    ]) {
      const response = await fetch(`${url}${path}`);
      expect([path, response.status]).toEqual([path, 404]);
      await response.text();
    }
    expect(asked).toEqual(["/api/realtime/events"]);
    const script = await fetch(`${url}/api/realtime/client.js`);
    expect([script.status, script.headers.get("content-type")]).toEqual([
      200,
      "text/javascript; charset=utf-8",
    ]);
  });

  it("attack: a trailing-slash prefix, ignoreTrailingSlash and case-insensitive routing still never open a look-alike", async () => {
    const realtime = await instance();
    const app = Fastify({
      routerOptions: { ignoreTrailingSlash: true, ignoreDuplicateSlashes: true, caseSensitive: false },
    });
    await app.register(realtimePlugin, { realtime, prefix: "/api/" });
    const url = await app.listen({ port: 0, host: "127.0.0.1" });
    onTestFinished(() => {
      app.server.closeAllConnections();
      return app.close();
    });
    await realtime.ready();
    await openStream(`${url}/api/realtime/events`);
    for (const path of [
      "/api/realtime/events/",
      "/api//realtime/events",
      "/API/REALTIME/EVENTS",
      "/api/realtime//events",
    ]) {
      const response = await SseClient.open(`${url}${path}`);
      onTestFinished(() => response.close());
      expect([path, response.response.status]).toEqual([path, 404]);
    }
    expect(realtime.connectionCount).toBe(1);
  });

  it("attack: a prefix with a parameter (multi-tenant) serves every tenant, whatever the length of its name", async () => {
    const realtime = await instance();
    const asked: unknown[] = [];
    const url = await fastifyApp(async (app) => {
      await app.register(realtimePlugin, {
        realtime,
        prefix: "/t/:tenant",
        authenticate: (request: FastifyRequest) => {
          asked.push(request.params);
          return null;
        },
      });
    });
    await realtime.ready();
    for (const tenant of ["acme", "abcdefg", "a-much-longer-tenant"]) {
      const stream = await SseClient.open(`${url}/t/${tenant}/realtime/events`);
      onTestFinished(() => stream.close());
      expect([tenant, stream.response.status]).toEqual([tenant, 200]);
      await stream.next("connected");
      const script = await fetch(`${url}/t/${tenant}/realtime/client.js`);
      expect([tenant, script.status]).toEqual([tenant, 200]);
      await script.text();
    }
    expect(asked).toEqual([{ tenant: "acme" }, { tenant: "abcdefg" }, { tenant: "a-much-longer-tenant" }]);
    for (const path of [
      "/t/acme/realtime/events/",
      "/t/acme/realtimeX/events",
      "/t/acme/x/realtime/events",
    ]) {
      const response = await fetch(`${url}${path}`);
      expect([path, response.status]).toEqual([path, 404]);
      await response.text();
    }
  });

  it("attack: @fastify/cors answers the preflight of the stream, and its headers ride on the stream", async () => {
    const realtime = await instance();
    const url = await fastifyApp(async (app) => {
      await app.register(cors, { origin: ["https://app.example"], credentials: true });
      await app.register(realtimePlugin, { realtime, prefix: "/api" });
    });
    await realtime.ready();
    const preflight = await fetch(`${url}/api/realtime/events`, {
      method: "OPTIONS",
      headers: { Origin: "https://app.example", "Access-Control-Request-Method": "GET" },
    });
    expect([preflight.status, preflight.headers.get("access-control-allow-origin")]).toEqual([
      204,
      "https://app.example",
    ]);
    const stream = await SseClient.open(`${url}/api/realtime/events`, {
      headers: { Origin: "https://app.example" },
    });
    onTestFinished(() => stream.close());
    await stream.next("connected");
    expect(stream.response.headers.get("access-control-allow-origin")).toBe("https://app.example");
    expect(stream.response.headers.get("access-control-allow-credentials")).toBe("true");
    // A foreign origin gets no grant, and still no stream it could read cross-origin is granted.
    const foreign = await SseClient.open(`${url}/api/realtime/events`, {
      headers: { Origin: "https://evil.example" },
    });
    onTestFinished(() => foreign.close());
    expect(foreign.response.headers.get("access-control-allow-origin")).toBeNull();
  });
});

describe("Hono", () => {
  async function honoApp(configure: (app: Hono) => void) {
    const realtime = await instance();
    const app = new Hono();
    configure(app);
    app.use(realtimeMiddleware(realtime));
    app.get("/realtime/other", (c) => c.text("later route"));
    app.get("/page", (c) => c.text("page"));
    app.options("/page", (c) => c.body(null, 204, { Allow: "GET, OPTIONS" }));
    app.on("PURGE", "/realtime/purge", (c) => c.text("purged"));
    const server = await listen(getRequestListener(app.fetch));
    onTestFinished(() => server.close());
    await realtime.ready();
    return { realtime, url: server.url };
  }

  it("attack: other paths fall through to later routes for GET, HEAD, OPTIONS and custom methods", async () => {
    const { realtime, url } = await honoApp(() => {});
    expect(await (await fetch(`${url}/realtime/other`)).text()).toBe("later route");
    const head = await fetch(`${url}/realtime/other`, { method: "HEAD" });
    expect([head.status, await head.text()]).toEqual([200, ""]);
    const options = await fetch(`${url}/page`, { method: "OPTIONS" });
    expect([options.status, options.headers.get("allow")]).toEqual([204, "GET, OPTIONS"]);
    const purge = await fetch(`${url}/realtime/purge`, { method: "PURGE" });
    expect(await purge.text()).toBe("purged");
    for (const method of ["HEAD", "OPTIONS", "DELETE"]) {
      const missing = await fetch(`${url}/realtimeX/events`, { method });
      expect([method, missing.status]).toEqual([method, 404]);
      await missing.text();
    }
    // HEAD of ours: the stream's headers, no body, no stream left open.
    const ours = await fetch(`${url}/realtime/events`, { method: "HEAD" });
    expect([ours.status, ours.headers.get("content-type"), await ours.text()]).toEqual([
      200,
      "text/event-stream; charset=utf-8",
      "",
    ]);
    expect(realtime.connectionCount).toBe(0);
  });

  it("attack: cors() registered before ours answers the stream's preflight", async () => {
    const { url } = await honoApp((app) => app.use(honoCors({ origin: "https://app.example" })));
    const preflight = await fetch(`${url}/realtime/events`, {
      method: "OPTIONS",
      headers: { Origin: "https://app.example", "Access-Control-Request-Method": "GET" },
    });
    expect([preflight.status, preflight.headers.get("access-control-allow-origin")]).toEqual([
      204,
      "https://app.example",
    ]);
  });
});

describe("Next", () => {
  it("attack: a Request whose URL is not under basePath is 404 and never authenticated", async () => {
    const realtime = await instance();
    const asked: string[] = [];
    const { GET, HEAD, POST } = createRouteHandlers(realtime, {
      authenticate: (request) => {
        asked.push(request.url);
        return null;
      },
    });
    await realtime.ready();
    const foreign = [
      "http://app.test/elsewhere/events",
      "http://app.test/realtimeX/events",
      "http://app.test/app/realtime/events",
      "http://app.test/realtime/events/",
      "http://app.test/realtime//events",
      "http://app.test/realtime%2Fevents",
      "http://app.test/realtime/admin",
      "http://app.test/",
    ];
    for (const url of foreign) {
      for (const handler of [GET, HEAD, POST]) {
        const response = await handler(
          new Request(url, { method: handler === POST ? "POST" : handler === HEAD ? "HEAD" : "GET" }),
        );
        expect([url, response.status]).toEqual([url, 404]);
      }
    }
    expect(asked).toEqual([]);
    // POST to the stream is ours, refused as a method.
    const post = await POST(new Request("http://app.test/realtime/events", { method: "POST" }));
    expect([post.status, post.headers.get("allow")]).toEqual([405, "GET, HEAD"]);
    expect(realtime.connectionCount).toBe(0);
  });
});

describe("Koa", () => {
  it("attack: middleware after ours that throws, and middleware around ours that writes late, never touch a stream", async () => {
    const realtime = await instance();
    const errors: unknown[] = [];
    const app = new Koa();
    app.silent = true;
    app.on("error", (error) => errors.push(error));
    // Around ours: the usual timing and error-wrapping middleware, writing after next() resolved.
    app.use(async (ctx, next) => {
      try {
        await next();
        ctx.set("X-Response-Time", "1ms");
      } catch (error) {
        ctx.status = 500;
        ctx.body = `wrapped: ${(error as Error).message}`;
      }
    });
    const handler = toNodeHandler(realtime, {
      authenticate: (req) => new URL(req.url ?? "/", "http://x").searchParams.get("user"),
    });
    app.use((ctx, next) => handler(ctx.req, ctx.res, next));
    app.use(() => {
      throw new Error("downstream failed");
    });
    const server = await listen(app.callback());
    onTestFinished(() => server.close());
    await realtime.ready();

    const other = await fetch(`${server.url}/page`);
    expect([other.status, await other.text()]).toEqual([500, "wrapped: downstream failed"]);
    const stream = await openStream(`${server.url}/realtime/events?user=alice`);
    const sent = await realtime.publish({ userId: "alice", type: "koa_attack" });
    await stream.waitForEvents(1);
    expect(stream.events.map((e) => e.id)).toEqual([sent.id]);
    stream.close();
    await expect.poll(() => realtime.connectionCount).toBe(0);
    // The late ctx.set after our stream ended is skipped by Koa (headers sent), not thrown.
    expect(errors).toEqual([]);
    expect(stream.chunks.map((c) => c.text).join("")).not.toMatch(/wrapped|Not Found|OK/);
    // Ours refusing (500 from authenticate) is ours too: the wrapper adds nothing.
    const script = await fetch(`${server.url}/realtime/client.js`);
    expect(script.status).toBe(200);
  });
});
