// The admin page over real HTTP: who may use it, the headers of every answer, and that every way of
// serving an instance serves it (realtime.handler, toNodeHandler, Express under a mount path).
import type { IncomingMessage, ServerResponse } from "node:http";
import express from "express";
import { describe, expect, it, onTestFinished } from "vitest";
import { toRequest, writeResponse } from "../src/adapters/bridge.js";
import { toNodeHandler } from "../src/adapters/node.js";
import { createAdmin } from "../src/admin/index.js";
import type { Realtime } from "../src/index.js";
import { STAFF_COOKIE, servedAdmin, staffOnly, staffSession } from "./support/admin.js";
import { recordingLogger } from "./support/observe.js";
import { listen, migratedRealtime } from "./support/server.js";
import { openStream } from "./support/sse.js";

const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

function expectSecurityHeaders(response: Response): void {
  expect(response.headers.get("content-security-policy")).toBe(CSP);
  expect(response.headers.get("x-content-type-options")).toBe("nosniff");
  expect(response.headers.get("referrer-policy")).toBe("same-origin");
  expect(response.headers.get("cache-control")).toMatch(/^no-store\b/);
}

async function closedLater(realtime: Realtime): Promise<Realtime> {
  onTestFinished(() => realtime.close());
  return realtime;
}

describe("createAdmin", () => {
  it("throws without an authorize function, on unknown options, and a second time on one instance", async () => {
    const { realtime } = await migratedRealtime();
    await closedLater(realtime);
    const create = createAdmin as (realtime: unknown, options?: unknown) => unknown;
    expect(() => create(realtime)).toThrow(TypeError);
    expect(() => create(realtime, {})).toThrow(/authorize must be a function/);
    expect(() => create(realtime, { authorize: true })).toThrow(/authorize must be a function/);
    expect(() => create(realtime, { authorise: () => true })).toThrow(/unknown option "authorise"/);
    expect(() => create(realtime, { authorize: () => true, basePath: "/x" })).toThrow(
      /unknown option "basePath"; the options are authorize/,
    );
    expect(() => create({}, { authorize: () => true })).toThrow(/createRealtime/);
    const { realtime: storageOff } = await migratedRealtime({ storage: false });
    await closedLater(storageOff);
    expect(() => create(storageOff, { authorize: () => true })).toThrow(/storage: false/);
    // Nothing was mounted by the refused calls: the first valid one is accepted, the next refused.
    expect(() => create(realtime, { authorize: () => true })).not.toThrow();
    expect(() => create(realtime, { authorize: () => true })).toThrow(/already has an admin page/);
  });
});

describe("authorize", () => {
  const PATHS = [
    "",
    "/",
    "/events/1",
    "/events?id=1",
    "/overview",
    "/live",
    "/admin.js",
    "/admin.css",
    "/metrics",
    "/nope",
  ];

  it("answers 403 to every admin request it does not allow, GET and POST, with the security headers", async () => {
    const { admin, realtime } = await servedAdmin();
    const before = await realtime.currentEventId();
    for (const path of PATHS) {
      const response = await fetch(`${admin}${path}`, { headers: { cookie: "staff=no" } });
      expect([path, response.status]).toEqual([path, 403]);
      expectSecurityHeaders(response);
      expect(response.headers.get("set-cookie")).toBeNull();
    }
    const post = await fetch(`${admin}/replay`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: `id=${before}`,
    });
    expect(post.status).toBe(403);
    expect(await realtime.currentEventId()).toBe(before);
    // The rest of the instance is untouched.
    expect((await fetch(`${new URL(admin).origin}/realtime/client.js`)).status).toBe(200);
  });

  it("refuses anything but true, and a throwing authorize with 403, logged through the instance's logger", async () => {
    const failure = new Error("session store down");
    const results: unknown[] = ["yes", 1, {}, null, undefined, false];
    let next = 0;
    const { admin, logger } = await servedAdmin({}, () => {
      if (next >= results.length) throw failure;
      return results[next++] as boolean;
    });
    for (const _ of [...results, "throws"]) {
      expect((await fetch(`${admin}/admin.css`)).status).toBe(403);
    }
    expect(logger.errors.some(([first]) => (first as { err?: unknown }).err === failure)).toBe(true);
  });

  it("awaits an async authorize", async () => {
    const { admin } = await servedAdmin({}, async (request) => request.headers.get("x-staff") === "1");
    expect((await fetch(`${admin}/admin.css`, { headers: { "x-staff": "1" } })).status).toBe(200);
    expect((await fetch(`${admin}/admin.css`, { headers: { "x-staff": "0" } })).status).toBe(403);
  });
});

describe("answers", () => {
  it("pages carry the strict CSP and a token cookie scoped to the admin; no inline script or style", async () => {
    const { admin, realtime } = await servedAdmin();
    const event = await realtime.publishGlobal({ type: "csp_check", detail: { n: 1 } });
    for (const path of ["", `/events/${event.id}`, "/overview", "/events/not-an-id"]) {
      const response = await fetch(`${admin}${path}`, { headers: { cookie: STAFF_COOKIE } });
      const body = await response.text();
      expect([path, response.status]).toEqual([path, path.endsWith("not-an-id") ? 400 : 200]);
      expect(response.headers.get("content-type")).toBe("text/html; charset=utf-8");
      expectSecurityHeaders(response);
      const cookie = response.headers.get("set-cookie") ?? "";
      expect(cookie).toMatch(
        /^pgrealtime-admin-csrf=[A-Za-z0-9_-]{43}; Path=\/realtime\/admin; HttpOnly; SameSite=Strict$/,
      );
      // Every script has a src (self), no element has a style attribute, no <style> element exists.
      expect(body).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
      expect(body).not.toMatch(/\sstyle=|<style/);
      expect(body).not.toMatch(/\son[a-z]+=/);
    }
  });

  it("the token cookie is Secure when the request came over https (behind a proxy that says so)", async () => {
    const { admin } = await servedAdmin();
    const response = await fetch(`${admin}/admin.css`, {
      headers: { cookie: STAFF_COOKIE, "x-forwarded-proto": "https" },
    });
    expect(response.headers.get("set-cookie")).toMatch(/; Secure/);
    // A request that already has a well-formed token keeps it: no new cookie.
    const session = await staffSession(admin);
    expect((await session.get("/admin.css")).headers.get("set-cookie")).toBeNull();
  });

  it("serves admin.css and admin.js itself, and 404 for other paths below /admin", async () => {
    const { admin } = await servedAdmin();
    const session = await staffSession(admin);
    const css = await session.get("/admin.css");
    expect(css.headers.get("content-type")).toBe("text/css; charset=utf-8");
    expect(await css.text()).toContain("pre.json");
    const js = await session.get("/admin.js");
    expect(js.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect(await js.text()).toContain("rt:admin.event");
    for (const path of ["/admin.jsx", "/static/admin.js", "/events/1/x", "/metricsx"]) {
      expect([path, (await session.get(path)).status]).toEqual([path, 404]);
    }
  });

  it("405 for other methods; a GET of the replay URL replays nothing", async () => {
    const { admin, realtime } = await servedAdmin();
    const session = await staffSession(admin);
    const event = await realtime.publishGlobal({ type: "not_replayed" });
    const before = await realtime.currentEventId();
    const get = await session.get(`/replay?id=${event.id}&csrf=${session.token}`);
    expect(get.status).toBe(405);
    expect(get.headers.get("allow")).toBe("POST");
    for (const method of ["PUT", "DELETE", "PATCH", "HEAD"]) {
      const response = await fetch(`${admin}/replay`, { method, headers: { cookie: session.cookie } });
      expect([method, response.status]).toEqual([method, 405]);
    }
    const put = await fetch(admin, { method: "PUT", headers: { cookie: session.cookie } });
    expect(put.status).toBe(405);
    expect(put.headers.get("allow")).toBe("GET, HEAD");
    expect(await realtime.currentEventId()).toBe(before);
  });

  it("answers HEAD like GET without a body (uptime checks), behind authorize too", async () => {
    const { admin } = await servedAdmin();
    const session = await staffSession(admin);
    const head = await fetch(`${admin}/overview`, { method: "HEAD", headers: { cookie: session.cookie } });
    expect(head.status).toBe(200);
    expect(head.headers.get("content-type")).toMatch(/^text\/html/);
    expectSecurityHeaders(head);
    expect(await head.text()).toBe("");
    expect((await fetch(`${admin}/overview`, { method: "HEAD" })).status).toBe(403);
  });
});

describe("mounting", () => {
  /** A node:http server that runs `realtime.handler` the way a Fetch runtime would. */
  function fetchServer(realtime: Realtime) {
    const logger = recordingLogger();
    return listen((req: IncomingMessage, res: ServerResponse) => {
      void realtime.handler(toRequest(req, res)).then((response) => writeResponse(response, res, logger));
    });
  }

  it("realtime.handler, toNodeHandler, Express under its mount path, and createAdmin's own handler all serve it", async () => {
    const { realtime, handle, url } = await servedAdmin();
    const event = await realtime.publishGlobal({ type: "mounted", detail: { n: 1 } });
    const viaFetch = await fetchServer(realtime);
    onTestFinished(() => viaFetch.close());
    const app = express();
    // A body parser before it has consumed the form; the admin reads the parsed form instead.
    app.use(express.urlencoded({ extended: false }));
    app.use("/realtime", toNodeHandler(realtime));
    const viaExpress = await listen(app);
    onTestFinished(() => viaExpress.close());

    for (const origin of [url, viaFetch.url, viaExpress.url]) {
      const admin = `${origin}/realtime/admin`;
      const page = await fetch(`${admin}/events/${event.id}`, { headers: { cookie: STAFF_COOKIE } });
      expect([origin, page.status]).toEqual([origin, 200]);
      expect(await page.text()).toContain("mounted");
      expectSecurityHeaders(page);
      expect((await fetch(`${admin}/overview`)).status).toBe(403);

      const session = await staffSession(admin);
      const replay = await session.replay([
        ["csrf", session.token],
        ["id", event.id],
      ]);
      expect([origin, replay.status]).toEqual([origin, 303]);
      const location = replay.headers.get("location") ?? "";
      expect(location).toMatch(/^\/realtime\/admin\/events\/\d+$/);
      const copy = await realtime.events.get(location.split("/").at(-1) ?? "");
      expect(copy?.replayOf).toBe(event.id);
    }

    const direct = await handle(
      new Request("http://app.test/realtime/admin/admin.css", { headers: { cookie: STAFF_COOKIE } }),
    );
    expect(direct.status).toBe(200);
    expect((await handle(new Request("http://app.test/realtime/events"))).status).toBe(404);
    expect((await handle(new Request("http://app.test/realtime/administrator"))).status).toBe(404);
  });

  it("a custom basePath moves the admin with it; without createAdmin, /admin is 404", async () => {
    const { realtime } = await migratedRealtime({ basePath: "/rt" });
    await closedLater(realtime);
    const request = () =>
      realtime.handler(
        new Request("http://app.test/rt/admin/admin.css", { headers: { cookie: STAFF_COOKIE } }),
      );
    expect((await request()).status).toBe(404);
    createAdmin(realtime, { authorize: staffOnly });
    const response = await request();
    expect(response.status).toBe(200);
    expect(response.headers.get("set-cookie")).toContain("Path=/rt/admin");
    expect((await realtime.handler(new Request("http://app.test/realtime/admin"))).status).toBe(404);
  });
});

describe("metrics", () => {
  it("serves this process's counters as Prometheus text behind authorize, no user or event id in it", async () => {
    const { admin, realtime, url } = await servedAdmin();
    const stream = await openStream(`${url}/realtime/events?user=secret-user-7`);
    const event = await realtime.publish({ userId: "secret-user-7", type: "ping_me" });
    await stream.until((c) => c.events.length === 1, "the event");
    expect((await fetch(`${admin}/metrics`)).status).toBe(403);
    const response = await fetch(`${admin}/metrics`, { headers: { cookie: STAFF_COOKIE } });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    expectSecurityHeaders(response);
    const body = await response.text();
    expect(body).toMatch(/^pgrealtime_events_sent_total 1$/m);
    expect(body).toMatch(/^pgrealtime_connections\{kind="user"\} 1$/m);
    expect(body).not.toContain("secret-user-7");
    expect(body).not.toContain(`"${event.id}"`);
  });
});
