// Attacks on routing through every adapter: paths that look like ours but are not must never open a
// stream (nor reach `authenticate`), and only `{basePath}/events` with a query does.
import { request as httpRequest } from "node:http";
import { describe, expect, it, onTestFinished } from "vitest";
import type { Realtime } from "../src/index.js";
import { ADAPTERS } from "./support/adapters.js";
import { migratedRealtime } from "./support/server.js";
import { openStream } from "./support/sse.js";

/** Look-alikes of `/realtime/events`, sent as raw request targets (fetch would normalize some). */
const LOOKALIKES = [
  "/realtime/events/",
  "/realtime//events",
  "//realtime/events",
  "/realtime%2Fevents",
  "/realtime/events%2F",
  "/realtime/%65vents",
  "/realtimeX/events",
  "/realtime/eventsX",
  "/REALTIME/events",
  "/realtime/events;x",
  "/realtime/events%00",
  "/x/realtime/events",
  "/realtime/client.js/",
  "/realtimeX/client.js",
  // Protocol-relative and backslash targets: a URL parser reads a host into them, the frameworks a path.
  "//x/realtime/events",
  "//realtime/realtime/events",
  "/\\x/realtime/events",
  "/realtime\\events",
];

/** One request with the target sent byte for byte; resolves to status and body. */
function raw(url: string, target: string, method = "GET"): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ hostname, port, path: target, method, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk) => {
        body += chunk;
        // A stream never ends: its first bytes are enough to tell.
        if (body.includes("event: connected")) req.destroy();
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      res.on("close", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

async function served(adapter: (typeof ADAPTERS)[number]) {
  const { realtime } = await migratedRealtime();
  onTestFinished(() => realtime.close());
  const asked: string[] = [];
  const server = await adapter.serve(realtime, (url) => {
    asked.push(url.pathname);
    return url.searchParams.get("user");
  });
  await realtime.ready();
  return { realtime: realtime as Realtime, url: server.url, asked };
}

describe.each(ADAPTERS)("$name", (adapter) => {
  it("attack: look-alike paths are never a stream and never reach authenticate", async () => {
    const { realtime, url, asked } = await served(adapter);
    for (const target of LOOKALIKES) {
      const { status, body } = await raw(url, target);
      expect([target, status >= 400 && status < 500, body.includes("event: connected")]).toEqual([
        target,
        true,
        false,
      ]);
    }
    expect(asked).toEqual([]);
    expect(realtime.connectionCount).toBe(0);
  });

  it("attack: a query (empty, odd, or naming a user) keeps the route and the cursor logic", async () => {
    const { realtime, url, asked } = await served(adapter);
    const bare = await raw(url, "/realtime/events?");
    expect(bare.body).toContain('"userId":null');
    // A fragment is no part of the path (URL parsers, Node's url.parse); Fastify's router 404s it.
    const fragment = await raw(url, "/realtime/events#x");
    expect(adapter.name === "fastify" ? fragment.status : fragment.body).toEqual(
      adapter.name === "fastify" ? 404 : expect.stringContaining('"userId":null'),
    );
    const odd = await raw(url, "/realtime/events?x&&=&lastEventId=");
    expect([odd.status, odd.body.includes('"userId":null')]).toEqual([200, true]);
    const alice = await openStream(`${url}/realtime/events?user=alice&x`);
    expect(JSON.parse((await alice.next("connected")).data)).toEqual({ userId: "alice" });
    expect(asked.every((path) => path === "/realtime/events")).toBe(true);
    alice.close();
    // A garbage cursor in the query is answered as the header's would be: a reset, never trusted.
    const bad = await openStream(`${url}/realtime/events?lastEventId=../../x`);
    expect(JSON.parse((await bad.next("reset")).data)).toMatchObject({ reason: expect.any(String) });
    bad.close();
    await expect.poll(() => realtime.connectionCount).toBe(0);
  });
});
