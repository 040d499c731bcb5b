// Koa 3 with the mount the README documents: `app.use((ctx, next) => handler(ctx.req, ctx.res, next))`.
// Koa answers after its middleware's promise settles (respond(): its own 404, or its status text written
// into whatever our handler left open), so the handler's promise is what keeps Koa out of our answers.
import Koa from "koa";
import { afterEach, beforeEach, describe, expect, it, onTestFinished } from "vitest";
import { toNodeHandler } from "../src/adapters/node.js";
import type { Realtime } from "../src/index.js";
import { listen, migratedRealtime } from "./support/server.js";
import { openStream, SseClient } from "./support/sse.js";

// Anything the process did not handle, recorded while each test runs (Vitest would report it too, but
// only after the test passed, and by then the server it crashed is gone).
const unhandled: unknown[] = [];
const record = (error: unknown) => unhandled.push(error);
beforeEach(() => {
  unhandled.length = 0;
  process.on("unhandledRejection", record);
  process.on("uncaughtException", record);
});
afterEach(() => {
  process.off("unhandledRejection", record);
  process.off("uncaughtException", record);
});

async function koaServing(configure: (app: Koa, realtime: Realtime) => void) {
  const { realtime } = await migratedRealtime();
  onTestFinished(() => realtime.close());
  const app = new Koa();
  configure(app, realtime);
  const server = await listen(app.callback());
  onTestFinished(() => server.close());
  await realtime.ready();
  return { realtime, url: server.url };
}

/** Waits until no stream is open; `connectionCount` changes without an event to wait on. */
async function closedAll(realtime: Realtime): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (realtime.connectionCount > 0) {
    if (Date.now() > deadline) throw new Error(`${realtime.connectionCount} streams still open after 5 s`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe("Koa 3", () => {
  it("C45 the documented mount: Koa's 404 for another path, then a stream that gets events and is cleaned up on abort, nothing unhandled", async () => {
    const { realtime, url } = await koaServing((app, realtime) => {
      const handler = toNodeHandler(realtime);
      app.use((ctx, next) => handler(ctx.req, ctx.res, next));
    });

    const other = await fetch(`${url}/somewhere-else`);
    expect(other.status).toBe(404);
    expect(await other.text()).toBe("Not Found");

    const stream = await openStream(`${url}/realtime/events`);
    expect(stream.response.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    expect(realtime.connectionCount).toBe(1);
    const sent = await realtime.publishGlobal({ type: "koa_hello", detail: { n: 1 } });
    await stream.waitForEvents(1);
    expect(stream.events).toEqual([{ id: sent.id, type: "koa_hello", scope: "global", detail: { n: 1 } }]);
    // Koa wrote nothing of its own into the stream: only our frames, never its "Not Found" or "OK".
    expect(stream.chunks.map((c) => c.text).join("")).not.toMatch(/Not Found|OK/);

    stream.close();
    await closedAll(realtime);
    // A request after the stream still gets Koa's own answers: the server is alive.
    expect((await fetch(`${url}/after`)).status).toBe(404);
    expect(unhandled).toEqual([]);
  });

  it("C45 hands Koa's downstream errors to Koa and serves client.js whole", async () => {
    const errors: unknown[] = [];
    const { realtime, url } = await koaServing((app, realtime) => {
      const handler = toNodeHandler(realtime);
      app.silent = true;
      app.on("error", (error) => errors.push(error));
      app.use((ctx, next) => handler(ctx.req, ctx.res, next));
      app.use(async (ctx) => {
        await Promise.resolve();
        if (ctx.path === "/boom") throw new Error("downstream failed");
        // A late header: written after Koa had already answered, this threw ERR_HTTP_HEADERS_SENT.
        ctx.res.setHeader("X-Downstream", "1");
        ctx.body = "downstream answered";
      });
    });

    const boom = await fetch(`${url}/boom`);
    expect(boom.status).toBe(500);
    expect(errors).toHaveLength(1);
    const page = await fetch(`${url}/page`);
    expect(page.headers.get("x-downstream")).toBe("1");
    expect(await page.text()).toBe("downstream answered");

    const script = await fetch(`${url}/realtime/client.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    const direct = await realtime.handler(new Request("http://app.test/realtime/client.js"));
    expect(await script.text()).toBe(await direct.text());
    // A refusal is ours too, and Koa adds nothing to it.
    const post = await fetch(`${url}/realtime/events`, { method: "POST" });
    expect(post.status).toBe(405);
    expect(await post.text()).toBe("Method not allowed\n");
    // The stream still opens after those.
    const stream = await SseClient.open(`${url}/realtime/events`);
    onTestFinished(() => stream.close());
    await stream.next("connected");
    expect(unhandled).toEqual([]);
  });
});
