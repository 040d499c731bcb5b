// Attacks on authentication through every adapter: a throwing or invalid `authenticate` must answer 500
// (never an anonymous stream), and one that resolves after the client went away must leave no stream.
import { Hono } from "hono";
import { describe, expect, it, onTestFinished } from "vitest";
import { realtimeMiddleware } from "../src/adapters/hono.js";
import { createRouteHandlers } from "../src/adapters/next.js";
import { ADAPTERS, gatedAuthenticate } from "./support/adapters.js";
import { migratedRealtime } from "./support/server.js";
import { SseClient } from "./support/sse.js";

const errors: unknown[][] = [];
const logger = { debug() {}, info() {}, warn() {}, error: (...args: unknown[]) => errors.push(args) };

describe.each(ADAPTERS)("$name", (adapter) => {
  it("attack: authenticate that throws, rejects or returns an invalid id answers 500, never a stream", async () => {
    const { realtime } = await migratedRealtime({ logger });
    onTestFinished(() => realtime.close());
    const served = await adapter.serve(realtime, (url) => {
      const kind = url.searchParams.get("kind");
      if (kind === "throw") throw new Error("session store down");
      if (kind === "reject") return Promise.reject(new Error("session store down"));
      if (kind === "empty") return "";
      if (kind === "object") return { id: "alice" } as never;
      if (kind === "float") return 1.5;
      if (kind === "nul") return "al\u0000ice";
      if (kind === "long") return "x".repeat(10_000);
      if (kind === "true") return true as never;
      return null;
    });
    await realtime.ready();
    for (const kind of ["throw", "reject", "empty", "object", "float", "nul", "long", "true"]) {
      errors.length = 0;
      const response = await fetch(`${served.url}/realtime/events?kind=${kind}`);
      const body = await response.text();
      expect([kind, response.status, response.headers.get("content-type"), body]).toEqual([
        kind,
        500,
        "text/plain; charset=utf-8",
        "Authentication failed\n",
      ]);
      expect(errors.length, kind).toBeGreaterThan(0);
    }
    // HEAD is admitted like a stream: refused the same way.
    const head = await fetch(`${served.url}/realtime/events?kind=throw`, { method: "HEAD" });
    expect(head.status).toBe(500);
    expect(realtime.connectionCount).toBe(0);
    // And the server still serves an honest stream afterwards.
    const ok = await SseClient.open(`${served.url}/realtime/events`);
    onTestFinished(() => ok.close());
    expect(ok.response.status).toBe(200);
    expect(JSON.parse((await ok.next("connected")).data)).toEqual({ userId: null });
  });

  it("attack: authenticate that resolves after the client aborted leaves no stream open", async () => {
    const { realtime } = await migratedRealtime({ logger });
    onTestFinished(() => realtime.close());
    const gated = gatedAuthenticate("late-user");
    const served = await adapter.serve(realtime, gated.authenticate);
    await realtime.ready();
    const controller = new AbortController();
    const pending = fetch(`${served.url}/realtime/events`, { signal: controller.signal }).catch((e) => e);
    await gated.started;
    controller.abort();
    expect(await pending).toBeInstanceOf(Error);
    // Give the server the abort: a fresh request on a new connection is served after the old socket's close.
    const probe = await fetch(`${served.url}/realtime/client.js`, { method: "HEAD" });
    expect(probe.status).toBe(200);
    gated.release();
    // Admission goes on past authenticate (waitForListener, already up): macrotask turns, no timer.
    for (let turn = 0; turn < 50; turn++) {
      await new Promise((resolve) => setImmediate(resolve));
      expect(realtime.connectionCount).toBe(0);
    }
    expect(realtime.stats().connections.total).toBe(0);
  });
});

describe("Fetch-based handlers (Next, Hono, realtime.handler)", () => {
  it("attack: a request aborted before or during authenticate still settles the handler, opening nothing", async () => {
    const gated = gatedAuthenticate("late-user");
    const { realtime } = await migratedRealtime({
      logger,
      authenticate: gated.authenticate,
    });
    onTestFinished(() => realtime.close());
    await realtime.ready();
    const { GET } = createRouteHandlers(realtime);
    const app = new Hono();
    // Upstream middleware whose cleanup runs after next(): it must run for an aborted stream too.
    let cleanedUp = 0;
    app.use(async (_c, next) => {
      await next();
      cleanedUp++;
    });
    app.use(realtimeMiddleware(realtime));
    const handlers = [GET, (request: Request) => app.fetch(request), realtime.handler];

    // Aborted before the handler ran.
    for (const handler of handlers) {
      const response = await handler(
        new Request("http://app.test/realtime/events", { signal: AbortSignal.abort() }),
      );
      expect(response.status).toBe(499);
    }
    // Aborted while authenticate is still running.
    const controllers = handlers.map(() => new AbortController());
    const pending = handlers.map((handler, i) =>
      handler(new Request("http://app.test/realtime/events", { signal: controllers[i]?.signal })),
    );
    await gated.started;
    for (const controller of controllers) controller.abort();
    expect((await Promise.all(pending)).map((r) => r.status)).toEqual([499, 499, 499]);
    expect(cleanedUp).toBe(2);
    gated.release();
    for (let turn = 0; turn < 20; turn++) await new Promise((resolve) => setImmediate(resolve));
    expect(realtime.connectionCount).toBe(0);
  });
});
