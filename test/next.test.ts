// pgrealtime/next: the App Router handlers called as Next calls them, with a plain `Request` (NextRequest
// is one) and the route's context as a second argument, their streamed Response bodies read as a browser
// would. A real `next build` + `next start` is left to CI (minutes here).
import { fileURLToPath } from "node:url";
import { describe, expect, it, onTestFinished, vi } from "vitest";
import { createRouteHandlers } from "../src/adapters/next.js";
import type { Realtime } from "../src/index.js";
import { databaseUrl, freshSchema } from "./support/database.js";
import { migratedRealtime } from "./support/server.js";

const BASE = "http://app.test";

/** A stream read incrementally; `cancel()` is what Next does when the browser goes away. */
async function openBody(response: Response) {
  expect(response.status).toBe(200);
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  onTestFinished(() => reader.cancel());
  const decoder = new TextDecoder();
  let text = "";
  return {
    reader,
    get text() {
      return text;
    },
    /** Reads until `done(text)` holds for everything read so far. */
    async until(done: (text: string) => boolean): Promise<string> {
      while (!done(text)) {
        const { value, done: ended } = await reader.read();
        if (ended) throw new Error(`stream ended before the expected text; got ${JSON.stringify(text)}`);
        text += decoder.decode(value, { stream: true });
      }
      return text;
    },
  };
}

/** The application events in SSE text, as `{ id, type }`. */
function events(text: string): Array<{ id: string; type: string }> {
  return [...text.matchAll(/^data: (\{"id".*)$/gm)].map((m) => {
    const { id, type } = JSON.parse(m[1] as string);
    return { id, type };
  });
}

async function nextRoute(): Promise<{ realtime: Realtime; GET: (request: Request) => Promise<Response> }> {
  const { realtime } = await migratedRealtime();
  onTestFinished(() => realtime.close());
  // What a session cookie names in a real app; the request is the route's own.
  const { GET } = createRouteHandlers(realtime, {
    authenticate: (request) => /(?:^|; )session=(\w+)/.exec(request.headers.get("cookie") ?? "")?.[1] ?? null,
  });
  await realtime.ready();
  return { realtime, GET };
}

const params = { params: Promise.resolve({ path: ["events"] }) };
const as = (user: string | null, init: RequestInit = {}) =>
  new Request(`${BASE}/realtime/events`, { ...init, headers: user ? { cookie: `session=${user}` } : {} });

describe("pgrealtime/next", () => {
  it("streams live events scoped by the user authenticate read from the request", async () => {
    const { realtime, GET } = await nextRoute();
    // Next calls a route handler with its context as a second argument; the handler ignores it.
    const call = GET as (request: Request, context: unknown) => Promise<Response>;
    const alice = await openBody(await call(as("alice"), params));
    const bob = await openBody(await GET(as("bob")));
    const anonymous = await openBody(await GET(as(null)));
    expect(await alice.until((t) => t.includes("event: connected"))).toContain('data: {"userId":"alice"}');
    await bob.until((t) => t.includes("event: connected"));
    expect(await anonymous.until((t) => t.includes("event: connected"))).toContain('data: {"userId":null}');
    expect(realtime.connectionCount).toBe(3);

    const forAlice = await realtime.publish({ userId: "alice", type: "for_alice" });
    const forBob = await realtime.publish({ userId: "bob", type: "for_bob" });
    const forAll = await realtime.publishGlobal({ type: "for_all" });
    const has = (id: string) => (t: string) => t.includes(`"id":"${id}"`);
    expect(events(await alice.until(has(forAll.id)))).toEqual([
      { id: forAlice.id, type: "for_alice" },
      { id: forAll.id, type: "for_all" },
    ]);
    expect(events(await bob.until(has(forAll.id))).map((e) => e.id)).toEqual([forBob.id, forAll.id]);
    expect(events(await anonymous.until(has(forAll.id))).map((e) => e.id)).toEqual([forAll.id]);
  });

  it("cleans up when the request is aborted (connectionCount back to 0), and after a cancelled body", async () => {
    const { realtime, GET } = await nextRoute();
    const controller = new AbortController();
    const stream = await openBody(await GET(as("carol", { signal: controller.signal })));
    await stream.until((t) => t.includes("connected"));
    expect(realtime.connectionCount).toBe(1);
    controller.abort();
    expect(realtime.connectionCount).toBe(0);
    expect((await stream.reader.read()).done).toBe(true);

    const cancelled = await openBody(await GET(as("carol")));
    await cancelled.until((t) => t.includes("connected"));
    expect(realtime.connectionCount).toBe(1);
    await cancelled.reader.cancel();
    expect(realtime.connectionCount).toBe(0);
  });

  it("resumes from Last-Event-ID", async () => {
    const { realtime, GET } = await nextRoute();
    const seen = await realtime.publish({ userId: "dave", type: "seen" });
    const missed = await realtime.publish({ userId: "dave", type: "missed" });
    const request = new Request(`${BASE}/realtime/events`, {
      headers: { cookie: "session=dave", "Last-Event-ID": seen.id },
    });
    const stream = await openBody(await GET(request));
    const text = await stream.until((t) => t.includes(`"id":"${missed.id}"`));
    expect(events(text).map((e) => e.id)).toEqual([missed.id]);
  });

  it("serves client.js with its ETag, 404 for other paths below the route, 405 for other methods", async () => {
    const { realtime, GET } = await nextRoute();
    const script = await GET(new Request(`${BASE}/realtime/client.js`));
    expect(script.status).toBe(200);
    expect(script.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    const direct = await realtime.handler(new Request(`${BASE}/realtime/client.js`));
    expect(script.headers.get("etag")).toBe(direct.headers.get("etag"));
    expect(await script.text()).toBe(await direct.text());
    for (const path of ["/realtime/nope", "/realtime/events/x", "/realtime/admin", "/elsewhere"]) {
      const response = await GET(new Request(`${BASE}${path}`));
      expect([path, response.status, await response.text()]).toEqual([path, 404, "Not found\n"]);
    }
    const { POST, HEAD } = createRouteHandlers(realtime);
    const post = await POST(new Request(`${BASE}/realtime/events`, { method: "POST" }));
    expect([post.status, post.headers.get("allow")]).toEqual([405, "GET, HEAD"]);
    const head = await HEAD(new Request(`${BASE}/realtime/client.js`, { method: "HEAD" }));
    expect([head.status, await head.text()]).toEqual([200, ""]);
  });

  it("falls back to the instance's own authenticate, and answers 500 when authenticate throws", async () => {
    const errors: unknown[][] = [];
    const logger = { debug() {}, info() {}, warn() {}, error: (...args: unknown[]) => errors.push(args) };
    const { realtime } = await migratedRealtime({
      logger,
      authenticate: (request) => request.headers.get("x-user"),
    });
    onTestFinished(() => realtime.close());
    const { GET } = createRouteHandlers(realtime);
    const stream = await openBody(
      await GET(new Request(`${BASE}/realtime/events`, { headers: { "x-user": "7" } })),
    );
    expect(await stream.until((t) => t.includes("event: connected"))).toContain('data: {"userId":"7"}');

    const failing = createRouteHandlers(realtime, {
      authenticate: async () => {
        throw new Error("session store down");
      },
    });
    expect((await failing.GET(new Request(`${BASE}/realtime/events`))).status).toBe(500);
    expect(errors[0]?.[0]).toMatchObject({ err: { message: "session store down" } });
  });

  it("refuses bad options with a TypeError naming them", async () => {
    const { realtime } = await migratedRealtime();
    onTestFinished(() => realtime.close());
    expect(() => createRouteHandlers(realtime, { dynamic: "force-dynamic" } as never)).toThrow(
      'createRouteHandlers: unknown option "dynamic"; the options are authenticate',
    );
    expect(() => createRouteHandlers(realtime, { authenticate: 1 } as never)).toThrow(
      /authenticate must be a function/,
    );
    expect(() => createRouteHandlers(null as never)).toThrow(
      "expected the object that createRealtime() returned",
    );
  });

  it("the example route (examples/next, importing the built package): Node runtime, dynamic, and a signed-in stream", async () => {
    vi.stubEnv("DATABASE_URL", databaseUrl());
    vi.stubEnv("PGREALTIME_SCHEMA", freshSchema("ex_next"));
    onTestFinished(() => {
      vi.unstubAllEnvs();
    });
    const route = await import(
      fileURLToPath(new URL("../examples/next/app/realtime/[...path]/route.js", import.meta.url))
    );
    const { realtime } = await import(
      fileURLToPath(new URL("../examples/next/lib/realtime.js", import.meta.url))
    );
    onTestFinished(() => realtime.close());
    await realtime.migrate();
    expect([route.runtime, route.dynamic]).toEqual(["nodejs", "force-dynamic"]);
    const stream = await openBody(
      await route.GET(
        new Request(`${BASE}/realtime/events`, { headers: { cookie: "theme=dark; user=alice" } }),
      ),
    );
    expect(await stream.until((t) => t.includes("event: connected"))).toContain('data: {"userId":"alice"}');
    const sent = await realtime.publish({ userId: "alice", type: "notice" });
    expect(events(await stream.until((t) => t.includes(`"id":"${sent.id}"`)))).toEqual([
      { id: sent.id, type: "notice" },
    ]);
  });
});
