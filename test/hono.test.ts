// pgrealtime/hono: a real Hono 4 app served by @hono/node-server on an ephemeral port, read by a real SSE
// client. The user comes from an earlier middleware (`c.set("user", …)`), as a session or JWT
// middleware would set it, and the adapter's `authenticate` reads it from Hono's own context.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { getRequestListener } from "@hono/node-server";
import { type Context, Hono } from "hono";
import { cors } from "hono/cors";
import { describe, expect, it, onTestFinished } from "vitest";
import { realtime as honoRealtime, realtimeMiddleware } from "../src/adapters/hono.js";
import { createAdmin } from "../src/admin/index.js";
import type { Realtime } from "../src/index.js";
import { STAFF_COOKIE, staffOnly } from "./support/admin.js";
import { databaseUrl, freshSchema } from "./support/database.js";
import { listen, migratedRealtime } from "./support/server.js";
import { cursorPattern, openStream, SseClient } from "./support/sse.js";

const EXAMPLE = fileURLToPath(new URL("../examples/hono/server.js", import.meta.url));

type AppEnv = { Variables: { user: { id: string } | null } };

/** The app the README shows: a "session" middleware (here `?as=<id>`), then ours, then the app's routes. */
async function honoServing(configure: (app: Hono<AppEnv>, realtime: Realtime) => void = () => {}) {
  const { realtime } = await migratedRealtime();
  onTestFinished(() => realtime.close());
  const app = new Hono<AppEnv>();
  app.use(async (c, next) => {
    const as = c.req.query("as");
    c.set("user", as ? { id: as } : null);
    await next();
  });
  configure(app, realtime);
  app.use(realtimeMiddleware(realtime, { authenticate: (c: Context<AppEnv>) => c.get("user")?.id ?? null }));
  app.get("/hello", (c) => c.text(`hello ${c.get("user")?.id ?? "anonymous"}`));
  const server = await listen(getRequestListener(app.fetch));
  onTestFinished(() => server.close());
  await realtime.ready();
  return { realtime, url: server.url };
}

describe("pgrealtime/hono", () => {
  it("authenticate reads the user an earlier middleware set: each user gets their own events, anonymous only global ones", async () => {
    const { realtime, url } = await honoServing();
    const alice = await openStream(`${url}/realtime/events?as=alice`);
    const bob = await openStream(`${url}/realtime/events?as=bob`);
    const anonymous = await openStream(`${url}/realtime/events`);
    expect(JSON.parse((await alice.next("connected")).data)).toEqual({ userId: "alice" });
    expect(JSON.parse((await anonymous.next("connected")).data)).toEqual({ userId: null });
    expect(alice.response.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    expect(alice.response.headers.get("x-accel-buffering")).toBe("no");
    expect(realtime.connectionCount).toBe(3);

    const forAlice = await realtime.publish({ userId: "alice", type: "note", detail: { to: "alice" } });
    const forBob = await realtime.publish({ userId: "bob", type: "note", detail: { to: "bob" } });
    const forAll = await realtime.publishGlobal({ type: "news" });
    await Promise.all([alice.waitForEvents(2), bob.waitForEvents(2), anonymous.waitForEvents(1)]);
    expect(alice.events.map((e) => e.id)).toEqual([forAlice.id, forAll.id]);
    expect(bob.events.map((e) => e.id)).toEqual([forBob.id, forAll.id]);
    expect(anonymous.events.map((e) => e.id)).toEqual([forAll.id]);
    expect(alice.events[0]).toEqual({
      id: forAlice.id,
      type: "note",
      scope: "user",
      detail: { to: "alice" },
    });
  });

  it("passes every other path on to Hono: the app's routes and Hono's 404 answer as usual", async () => {
    const { realtime, url } = await honoServing();
    const hello = await fetch(`${url}/hello?as=carol`);
    expect(await hello.text()).toBe("hello carol");
    // Below basePath but not one of ours, and the admin page while it is not mounted: Hono's own 404.
    for (const path of ["/realtime/elsewhere", "/realtime/events/x", "/realtime/admin", "/nowhere"]) {
      const response = await fetch(`${url}${path}`);
      expect([path, response.status, await response.text()]).toEqual([path, 404, "404 Not Found"]);
    }
    const script = await fetch(`${url}/realtime/client.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    const direct = await realtime.handler(new Request("http://app.test/realtime/client.js"));
    expect(await script.text()).toBe(await direct.text());
    const post = await fetch(`${url}/realtime/events`, { method: "POST" });
    expect([post.status, post.headers.get("allow")]).toEqual([405, "GET, HEAD"]);
  });

  it("keeps the headers of Hono middleware that ran before it (cors)", async () => {
    const { url } = await honoServing((app) => {
      app.use(cors({ origin: "https://app.example", credentials: true }));
    });
    const stream = await SseClient.open(`${url}/realtime/events?as=alice`, {
      headers: { Origin: "https://app.example" },
    });
    onTestFinished(() => stream.close());
    await stream.next("connected");
    const headers = stream.response.headers;
    expect(headers.get("access-control-allow-origin")).toBe("https://app.example");
    expect(headers.get("access-control-allow-credentials")).toBe("true");
    // Set by cors after next(), on our streamed response.
    expect(headers.get("vary")).toBe("Origin");
    expect(headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
  });

  it("serves the admin page once createAdmin mounted it, with its own authorization", async () => {
    const { url } = await honoServing((_app, realtime) => {
      createAdmin(realtime, { authorize: staffOnly });
    });
    const staff = await fetch(`${url}/realtime/admin`, { headers: { cookie: STAFF_COOKIE } });
    expect(staff.status).toBe(200);
    expect(staff.headers.get("content-type")).toMatch(/^text\/html/);
    expect(await staff.text()).toContain("<html");
    expect((await fetch(`${url}/realtime/admin`)).status).toBe(403);
  });

  it("resumes from Last-Event-ID with only what the stream missed", async () => {
    const { realtime, url } = await honoServing();
    const first = await openStream(`${url}/realtime/events?as=dave`);
    const seen = await realtime.publish({ userId: "dave", type: "seen" });
    await first.waitForEvents(1);
    const cursor = first.messages.find((m) => m.event === "message")?.id as string;
    expect(cursor).toMatch(cursorPattern(seen.id));
    first.close();
    await expect.poll(() => realtime.connectionCount).toBe(0);

    const missed = await realtime.publish({ userId: "dave", type: "missed" });
    await realtime.publish({ userId: "erin", type: "not_daves" });
    const resumed = await openStream(`${url}/realtime/events?as=dave`, cursor);
    await resumed.waitForEvents(1);
    const live = await realtime.publishGlobal({ type: "live" });
    await resumed.waitForEvents(2);
    expect(resumed.events.map((e) => e.id)).toEqual([missed.id, live.id]);
    expect(resumed.messages.some((m) => m.event === "reset")).toBe(false);
  });

  it("cleans up an aborted stream (connectionCount back to 0) and keeps serving", async () => {
    const { realtime, url } = await honoServing();
    const stream = await openStream(`${url}/realtime/events?as=frank`);
    expect(realtime.connectionCount).toBe(1);
    stream.close();
    await expect.poll(() => realtime.connectionCount).toBe(0);
    const again = await openStream(`${url}/realtime/events?as=frank`);
    expect(realtime.connectionCount).toBe(1);
    const sent = await realtime.publish({ userId: "frank", type: "after_abort" });
    await again.waitForEvents(1);
    expect(again.events.map((e) => e.id)).toEqual([sent.id]);
  });

  it("answers 500 when authenticate throws, never an anonymous stream", async () => {
    const errors: unknown[][] = [];
    const logger = { debug() {}, info() {}, warn() {}, error: (...args: unknown[]) => errors.push(args) };
    const { realtime } = await migratedRealtime({ logger });
    onTestFinished(() => realtime.close());
    const app = new Hono();
    app.use(
      honoRealtime(realtime, {
        authenticate: () => {
          throw new Error("session store down");
        },
      }),
    );
    const response = await app.request("/realtime/events");
    expect(response.status).toBe(500);
    expect(errors[0]?.[0]).toMatchObject({ err: { message: "session store down" } });
    expect(realtime.connectionCount).toBe(0);
  });

  it("lifts the per-request idle timeout when c.env is a Bun-shaped server", async () => {
    const { realtime } = await migratedRealtime();
    onTestFinished(() => realtime.close());
    const app = new Hono();
    app.use(realtimeMiddleware(realtime));
    const lifted: unknown[] = [];
    const server = { timeout: (request: Request, seconds: number) => lifted.push([request.url, seconds]) };
    const controller = new AbortController();
    const request = new Request("http://app.test/realtime/events", { signal: controller.signal });
    const response = await app.fetch(request, server);
    expect(response.status).toBe(200);
    expect(lifted).toEqual([["http://app.test/realtime/events", 0]]);
    controller.abort();
    expect(realtime.connectionCount).toBe(0);
  });

  it("refuses bad options with a TypeError naming them", async () => {
    const { realtime } = await migratedRealtime();
    onTestFinished(() => realtime.close());
    expect(() => realtimeMiddleware(realtime, { authenticate: () => null, auth: 1 } as never)).toThrow(
      'pgrealtime/hono realtime(): unknown option "auth"; the options are authenticate',
    );
    expect(() => realtimeMiddleware(realtime, { authenticate: "user" } as never)).toThrow(
      /authenticate must be a function/,
    );
    expect(() => realtimeMiddleware({} as never)).toThrow(
      "expected the object that createRealtime() returned",
    );
    expect(honoRealtime).toBe(realtimeMiddleware);
  });

  it("runs examples/hono/server.js (the built package, as a user imports it): a signed-in stream gets its notice", async () => {
    const schema = freshSchema("ex_hono");
    const child = spawn(process.execPath, [EXAMPLE], {
      env: { ...process.env, DATABASE_URL: databaseUrl(), PGREALTIME_SCHEMA: schema, PORT: "0" },
      stdio: ["ignore", "pipe", "inherit"],
    });
    onTestFinished(() => {
      if (child.exitCode === null) child.kill("SIGKILL");
    });
    let out = "";
    child.stdout.setEncoding("utf8");
    while (!/listening on (http:\S+)\//.test(out)) {
      const [chunk] = (await Promise.race([once(child.stdout, "data"), once(child, "exit")])) as [unknown];
      if (typeof chunk !== "string") throw new Error(`the example exited before listening: ${out}`);
      out += chunk;
    }
    const url = (/listening on (http:\S+)\//.exec(out) as RegExpExecArray)[1] as string;

    const login = await fetch(`${url}/login/alice`, { redirect: "manual" });
    const cookie = (login.headers.get("set-cookie") as string).split(";")[0] as string;
    const page = await (await fetch(`${url}/`, { headers: { cookie } })).text();
    expect(page).toContain('<script src="/realtime/client.js" defer></script>');
    expect(page).toContain("Signed in as alice");
    const alice = await SseClient.open(`${url}/realtime/events`, { headers: { cookie } });
    onTestFinished(() => alice.close());
    expect(JSON.parse((await alice.next("connected")).data)).toEqual({ userId: "alice" });
    const anonymous = await openStream(`${url}/realtime/events`);
    const { id } = await (await fetch(`${url}/notify/alice`, { method: "POST" })).json();
    await alice.waitForEvents(1);
    expect(alice.events).toMatchObject([{ id, type: "notice", scope: "user" }]);
    expect(anonymous.events).toEqual([]);

    child.kill("SIGTERM");
    const [code] = await once(child, "exit");
    expect(code).toBe(0);
  });
});
