// The browser client in real headless Chromium against the real server: the script tag served by
// `toNodeHandler`, real EventSource, real PostgreSQL. Faults are injected by a thin node:http layer in
// front of the realtime handler (refuse, hang, cut or stall the event stream), never inside the library.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { toNodeHandler } from "../src/adapters/node.js";
// For its `window.pgrealtime` declaration.
import type {} from "../src/client/auto.js";
import type { ConnectOptions } from "../src/client/index.js";
import type { Realtime, RealtimeEvent } from "../src/index.js";
import { CHROMIUM_SKIP_REASON, HAS_CHROMIUM, launchChromium } from "./support/chromium.js";
import { listen, migratedRealtime } from "./support/server.js";

/** Every `rt:*` name the test pages listen to: any event the tests publish, leaked or not, lands here. */
const LISTENED = [
  "connected",
  "disconnected",
  "reset",
  "task_complete",
  "new_update",
  "new_pull_request",
  "page_imported",
  "page_imported:42",
  "page_imported:abc",
  "strings",
  "tick",
  "tick:42",
  "done",
  // Names only a forged frame could ask for (reserved or malformed types): none may ever fire.
  "error",
  "ping",
  "bad type",
  "",
  "x".repeat(101),
];
const STATE_EVENTS = new Set(["rt:connected", "rt:disconnected", "rt:reset"]);

/** What the page records of each DOM event it hears. */
interface Heard {
  type: string;
  detail: unknown;
  id?: string;
  scope?: string;
  custom: boolean;
}

declare global {
  interface Window {
    __events: Heard[];
    /** How many `ping` events (visible heartbeats) the page's EventSources have dispatched. */
    __pings: number;
    /** Every `message` and `reset` frame the page's EventSources received, in order. */
    __frames: Frame[];
  }
}

/** A frame as the page's EventSource received it: `id` is `data.id`, `cursor` its `id:` line. */
interface Frame {
  type: "message" | "reset";
  id: string | null;
  cursor: string;
}

/** C07: strings that break naive SSE framing (a raw CR or LF would end the line or forge a field). */
const AWKWARD = ["a\nb", "a\r\nb", "x\revent: steal", "x\n", "a\u000bb", "\u2028"];

/** One event stream request as the server received it. */
interface StreamRequest {
  url: URL;
  lastEventIdHeader: string | undefined;
  user: string | null;
  /** `Date.now()` when it arrived. */
  at: number;
}

/**
 * The app under test: a page route plus the realtime handler, behind a layer that records every stream
 * request and can refuse (`503`), hang, cut or stall the streams.
 */
async function startApp(realtime: Realtime) {
  const realtimeHandler = toNodeHandler(realtime, { authenticate: userOf });
  const requests: StreamRequest[] = [];
  const open = new Map<ServerResponse, string | null>();
  // Faults are per user, so that one test's pages never absorb another's.
  const refuse = new Map<string | null, number>();
  const hang = new Map<string | null, number>();
  const gates = new Map<string | null, { arrive(): void; released: Promise<void> }>();
  const take = (faults: Map<string | null, number>, user: string | null) => {
    const left = faults.get(user) ?? 0;
    if (left > 0) faults.set(user, left - 1);
    return left > 0;
  };

  const app = await listen((req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    if (url.pathname === "/") {
      const cursor = url.searchParams.get("cursor");
      const tag = realtime.scriptTag({
        ...(cursor === null ? {} : { lastEventId: cursor }),
        ...(url.searchParams.get("auto") === "false" ? { autoConnect: false } : {}),
      });
      res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" }).end(pageHtml(tag));
      return;
    }
    if (url.pathname === "/scripted/events") {
      scripted(url, res);
      return;
    }
    if (url.pathname === "/favicon.ico") {
      res.writeHead(204).end();
      return;
    }
    if (url.pathname === "/realtime/events") {
      const user = userOf(req);
      const header = req.headers["last-event-id"];
      requests.push({
        url,
        lastEventIdHeader: typeof header === "string" ? header : undefined,
        user,
        at: Date.now(),
      });
      if (take(refuse, user)) {
        res.writeHead(503, { "Retry-After": "1" }).end("Unavailable\n");
        return;
      }
      // Accepted and never answered: EventSource stays CONNECTING until the client gives up.
      if (take(hang, user)) return;
      open.set(res, user);
      res.once("close", () => open.delete(res));
      const gate = gates.get(user);
      if (gate) {
        gates.delete(user);
        gate.arrive();
        void gate.released.then(() => realtimeHandler(req, res));
        return;
      }
    }
    realtimeHandler(req, res);
  });

  // A hand-written stream standing in for server behaviour the client must survive (overlapping resumes,
  // resets, visible heartbeats): each request gets the next step, a body that ends the response or one
  // it keeps open (`hold`); requests beyond the script get an open, silent stream.
  const scripts: Array<string | { hold: string }> = [];
  const scriptedRequests: URL[] = [];
  const scripted = (url: URL, res: ServerResponse) => {
    scriptedRequests.push(url);
    res.writeHead(200, { "Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache" });
    const step = scripts.shift();
    if (typeof step === "string") res.end(step);
    else if (step !== undefined) res.write(step.hold);
  };

  const streamsOf = (user: string | null) => [...open].filter(([, u]) => u === user).map(([res]) => res);

  return {
    url: app.url,
    requests,
    /** The stream requests one user's pages made. */
    requestsOf(user: string | null): StreamRequest[] {
      return requests.filter((r) => r.user === user);
    },
    /** What the next requests to `/scripted/events` get, in order; forgets the requests made so far. */
    script(...steps: Array<string | { hold: string }>) {
      scripts.splice(0, scripts.length, ...steps);
      scriptedRequests.length = 0;
    },
    scriptedRequests,
    /** Answers `user`'s next `count` stream requests `503`. */
    refuseNext(user: string | null, count: number) {
      refuse.set(user, count);
    },
    /** Leaves `user`'s next `count` stream requests unanswered. */
    hangNext(user: string | null, count: number) {
      hang.set(user, count);
    },
    /**
     * Holds `user`'s next stream request that is not refused or hung until `release()`, so that a test
     * can publish while the client is certainly disconnected.
     */
    gateNext(user: string | null): { arrived: Promise<void>; release(): void } {
      let arrive = () => {};
      let release = () => {};
      const arrived = new Promise<void>((resolve) => {
        arrive = resolve;
      });
      const released = new Promise<void>((resolve) => {
        release = resolve;
      });
      gates.set(user, { arrive, released });
      return { arrived, release };
    },
    /** Destroys the sockets of `user`'s open streams, as a network loss does. */
    cutStreams(user: string | null) {
      for (const res of streamsOf(user)) res.socket?.destroy();
    },
    /** Keeps `user`'s open streams' sockets but drops whatever the server writes to them from now on. */
    stallStreams(user: string | null) {
      for (const res of streamsOf(user)) res.write = (() => true) as ServerResponse["write"];
    },
    close: app.close,
  };
}

type App = Awaited<ReturnType<typeof startApp>>;

function userOf(req: IncomingMessage): string | null {
  const cookie = /(?:^|;\s*)user=([^;]+)/.exec(req.headers.cookie ?? "");
  if (cookie?.[1]) return decodeURIComponent(cookie[1]);
  return new URL(req.url ?? "/", "http://localhost").searchParams.get("user");
}

function pageHtml(scriptTag: string): string {
  return `<!doctype html>
<html>
<head>
<meta charset="utf-8">
<title>pgrealtime browser test</title>
<script>
  window.__events = [];
  // Counts the heartbeats that reach the page; the client's own listeners are untouched.
  window.__pings = 0;
  // Records each frame's id: line, the opaque cursor a resume must carry.
  window.__frames = [];
  const NativeEventSource = window.EventSource;
  window.EventSource = class extends NativeEventSource {
    constructor(url, init) {
      super(url, init);
      this.addEventListener("ping", () => { window.__pings += 1; });
      for (const type of ["message", "reset"]) {
        this.addEventListener(type, (e) => {
          let id = null;
          try { id = JSON.parse(e.data).id ?? null; } catch {}
          window.__frames.push({ type, id, cursor: e.lastEventId });
        });
      }
    }
  };
  for (const name of ${JSON.stringify(LISTENED)}) {
    window.addEventListener("rt:" + name, (e) => {
      window.__events.push({
        type: e.type,
        detail: e.detail == null ? null : JSON.parse(JSON.stringify(e.detail)),
        id: e.id,
        scope: e.scope,
        custom: e instanceof CustomEvent,
      });
    });
  }
</script>
${scriptTag}
</head>
<body></body>
</html>`;
}

/** SSE frames as the server writes them. */
const sse = {
  connected: (userId: string | null = null) =>
    `retry: 60000\nevent: connected\ndata: ${JSON.stringify({ userId })}\n\n`,
  /** Event `id` (`data.id`) under the `id:` line `cursor` (default: the id itself; `null`: no line). */
  event: (id: string, type: string, detail: object, cursor: string | null = id) =>
    sse.raw(cursor, { id, type, scope: "global", detail }),
  /** Any `data` JSON, under the `id:` line `cursor` unless `null`: also frames no publish can produce. */
  raw: (cursor: string | null, data: unknown) =>
    `${cursor === null ? "" : `id: ${cursor}\n`}data: ${JSON.stringify(data)}\n\n`,
  /** With `id`, the cursor to go on from; `""` is "no cursor". */
  reset: (reason: string, id?: string) =>
    `event: reset\n${id === undefined ? "" : `id: ${id}\n`}data: ${JSON.stringify({ reason })}\n\n`,
};

/** How a page must have recorded a published event. */
function heard(event: Pick<RealtimeEvent, "id" | "type" | "scope"> & { detail: object }, suffix = ""): Heard {
  return {
    type: `rt:${event.type}${suffix}`,
    detail: event.detail,
    id: event.id,
    scope: event.scope,
    custom: true,
  };
}

async function recorded(page: Page): Promise<Heard[]> {
  return page.evaluate(() => window.__events);
}

/** The application events a page dispatched, without connection state changes. */
async function appEvents(page: Page): Promise<Heard[]> {
  return (await recorded(page)).filter((e) => !STATE_EVENTS.has(e.type));
}

/** The `id:` line (an opaque cursor) of the frame that brought event `eventId` to the page. */
async function cursorOfEvent(page: Page, eventId: string): Promise<string> {
  const frames = await page.evaluate(() => window.__frames);
  const frame = frames.find((f) => f.type === "message" && f.id === eventId);
  if (frame === undefined) throw new Error(`the page received no frame for event ${eventId}`);
  return frame.cursor;
}

/** The `id:` line of the last `event: reset` the page received. */
async function lastResetCursor(page: Page): Promise<string> {
  const frames = await page.evaluate(() => window.__frames);
  const frame = frames.filter((f) => f.type === "reset").at(-1);
  if (frame === undefined) throw new Error("the page received no reset frame");
  return frame.cursor;
}

async function countOf(page: Page, type: string): Promise<number> {
  return (await recorded(page)).filter((e) => e.type === type).length;
}

/** Waits until the page has dispatched `type` at least `count` times. */
async function waitFor(page: Page, type: string, count = 1): Promise<void> {
  await page.waitForFunction(
    ([name, n]) => window.__events.filter((e) => e.type === name).length >= n,
    [type, count] as const,
    { timeout: 15_000 },
  );
}

/** Reports the page hidden or visible the way a browser does for a background tab. */
async function setVisibility(page: Page, state: DocumentVisibilityState): Promise<void> {
  await page.evaluate((value) => {
    Object.defineProperty(document, "visibilityState", { configurable: true, get: () => value });
    Object.defineProperty(document, "hidden", { configurable: true, get: () => value === "hidden" });
    document.dispatchEvent(new Event("visibilitychange"));
  }, state);
}

describe.skipIf(!HAS_CHROMIUM)(
  HAS_CHROMIUM ? "browser client in headless Chromium" : `browser client (skipped: ${CHROMIUM_SKIP_REASON})`,
  () => {
    let realtime: Realtime;
    let browser: Browser;
    let app: App;
    /** Idle streams get a heartbeat at least every 300 ms, so a page sees pings within a short test. */
    let heartbeating: Realtime;
    let heartbeatingApp: App;
    /** `storage: false`: nothing to resume from. */
    let volatile: Realtime;
    let volatileApp: App;
    const contexts: BrowserContext[] = [];

    beforeAll(async () => {
      ({ realtime } = await migratedRealtime());
      app = await startApp(realtime);
      ({ realtime: heartbeating } = await migratedRealtime({ heartbeatMs: 300 }));
      heartbeatingApp = await startApp(heartbeating);
      ({ realtime: volatile } = await migratedRealtime({ storage: false }));
      volatileApp = await startApp(volatile);
      browser = await launchChromium();
    });

    // Each test's pages go with it, so no stream of one test outlives it into the next.
    afterEach(async () => {
      for (const context of contexts.splice(0)) await context.close();
    });

    afterAll(async () => {
      await browser?.close();
      for (const server of [app, heartbeatingApp, volatileApp]) await server?.close();
      for (const instance of [realtime, heartbeating, volatile]) await instance?.close();
    });

    /** A fresh browser profile (its own cookies), signed in as `user` unless null. */
    async function contextAs(user: string | null): Promise<BrowserContext> {
      const context = await browser.newContext();
      contexts.push(context);
      if (user !== null) await context.addCookies([{ name: "user", value: user, url: app.url }]);
      return context;
    }

    /**
     * Opens the test page of `on` (default: the main app) in `context` and, unless `query.auto` is
     * "false", waits for `rt:connected`.
     */
    async function openPage(
      context: BrowserContext,
      query: Record<string, string> = {},
      on: App = app,
    ): Promise<Page> {
      const page = await context.newPage();
      page.on("pageerror", (error) => console.error("page error:", error));
      await page.goto(`${on.url}/?${new URLSearchParams(query)}`);
      if (query.auto !== "false") await waitFor(page, "rt:connected");
      return page;
    }

    /** Connects by hand from a page loaded with `data-auto-connect="false"`. */
    async function connectIn(page: Page, options: ConnectOptions): Promise<void> {
      await page.evaluate((opts) => {
        const global = window.pgrealtime;
        if (!global) throw new Error("window.pgrealtime is missing");
        global.connection = global.connect(opts);
      }, options);
    }

    /** Publishes a global marker and waits until every page has it: all they may see came before. */
    async function settle(...pages: Page[]): Promise<RealtimeEvent<string, object>> {
      const marker = await realtime.publishGlobal({ type: "done", detail: {} });
      for (const page of pages) {
        await page.waitForFunction((id) => window.__events.some((e) => e.id === id), marker.id, {
          timeout: 15_000,
        });
      }
      return marker;
    }

    test("two users see exactly their own events, global events and the :id sub-event; never a system event", async () => {
      const alice = await openPage(await contextAs("alice"));
      const bob = await openPage(await contextAs("bob"));

      const a1 = await realtime.publish({ userId: "alice", type: "task_complete", detail: { taskId: 1 } });
      const b1 = await realtime.publish({ userId: "bob", type: "task_complete", detail: { taskId: 2 } });
      const g1 = await realtime.publishGlobal({ type: "new_update", detail: { data: "some" } });
      await realtime.publishSystem({ type: "new_pull_request", detail: { prId: 456 }, userId: "alice" });
      await realtime.publishSystem({ type: "new_pull_request", detail: { prId: 457 } });
      const a2 = await realtime.publish({
        userId: "alice",
        type: "page_imported",
        detail: { ":id": 42, title: "Report" },
      });
      const b2 = await realtime.publish({
        userId: "bob",
        type: "page_imported",
        detail: { ":id": "abc", nested: { list: [1, "two", null, true] } },
      });
      const done = await settle(alice, bob);

      expect(await appEvents(alice)).toEqual([
        heard(a1),
        heard(g1),
        heard(a2),
        heard(a2, ":42"),
        heard(done),
      ]);
      expect(await appEvents(bob)).toEqual([heard(b1), heard(g1), heard(b2), heard(b2, ":abc"), heard(done)]);

      for (const [page, user] of [
        [alice, "alice"],
        [bob, "bob"],
      ] as const) {
        const connected = (await recorded(page)).filter((e) => e.type === "rt:connected");
        expect(connected).toEqual([{ type: "rt:connected", detail: { userId: user }, custom: true }]);
      }
      // The script tag derived the stream URL from its own src and started without a cursor.
      const [first] = app.requestsOf("alice");
      expect(first?.url.pathname).toBe("/realtime/events");
      expect(first?.url.searchParams.has("lastEventId")).toBe(false);
    });

    test("C07 awkward strings arrive byte-identical in e.detail, values and keys, the stream never split", async () => {
      const carol = await openPage(await contextAs("carol"));
      const detail = {
        values: AWKWARD,
        ...Object.fromEntries(AWKWARD.map((s, i) => [s, i])),
        nested: { deep: AWKWARD.join("") },
      };
      const user = await realtime.publish({ userId: "carol", type: "strings", detail });
      const global = await realtime.publishGlobal({ type: "strings", detail });
      const done = await settle(carol);

      expect(await appEvents(carol)).toEqual([heard(user), heard(global), heard(done)]);
      // Equal to what was published, not just to what the server stored and returned.
      const [first] = await appEvents(carol);
      expect(first?.detail).toStrictEqual(detail);
    });

    test("C16 two tabs of one user each dispatch a user event exactly once", async () => {
      const context = await contextAs("dave");
      const tab1 = await openPage(context);
      const tab2 = await openPage(context);
      const event = await realtime.publish({ userId: "dave", type: "task_complete", detail: { taskId: 16 } });
      const done = await settle(tab1, tab2);

      for (const tab of [tab1, tab2]) {
        expect(await appEvents(tab)).toEqual([heard(event), heard(done)]);
      }
      expect(app.requestsOf("dave")).toHaveLength(2);
    });

    test("an anonymous page gets global events only", async () => {
      const anonymous = await openPage(await contextAs(null));
      await realtime.publish({ userId: "alice", type: "task_complete", detail: { taskId: 3 } });
      const global = await realtime.publishGlobal({ type: "new_update", detail: { data: "all" } });
      const done = await settle(anonymous);

      expect(await appEvents(anonymous)).toEqual([heard(global), heard(done)]);
      expect((await recorded(anonymous)).find((e) => e.type === "rt:connected")?.detail).toEqual({
        userId: null,
      });
    });

    test("C11 an event published between page render and connect is delivered (data-last-event-id)", async () => {
      const rendered = await realtime.publish({
        userId: "erin",
        type: "task_complete",
        detail: { taskId: 11 },
      });
      const cursor = await realtime.currentEventId();
      expect(cursor).toBe(rendered.id);
      // The page "was rendered" at `cursor`; this one is published before its script connects.
      const missed = await realtime.publish({
        userId: "erin",
        type: "task_complete",
        detail: { taskId: 12 },
      });
      const page = await openPage(await contextAs("erin"), { cursor });

      const [first] = app.requestsOf("erin");
      expect(first?.url.searchParams.get("lastEventId")).toBe(cursor);
      const done = await settle(page);
      expect(await appEvents(page)).toEqual([heard(missed), heard(done)]);
      expect(await page.evaluate(() => window.pgrealtime?.connection?.lastEventId)).toBe(
        await cursorOfEvent(page, done.id),
      );
    });

    test("C08 a cursor the server cannot resume from fires rt:reset before anything else, then live events", async () => {
      const page = await openPage(await contextAs("fay"), { cursor: "999999999999" });
      await waitFor(page, "rt:reset");
      const live = await realtime.publish({ userId: "fay", type: "tick", detail: { n: 1 } });
      const done = await settle(page);

      expect(await recorded(page)).toEqual([
        { type: "rt:connected", detail: { userId: "fay" }, custom: true },
        { type: "rt:reset", detail: { reason: "unknown-id" }, custom: true },
        heard(live),
        heard(done),
      ]);
      expect(await page.evaluate(() => window.pgrealtime?.connection?.lastEventId)).toBe(
        await cursorOfEvent(page, done.id),
      );
    });

    test("C08 after rt:reset the client goes on from the cursor the reset carried: two cuts later, one reset and nothing lost", async () => {
      // Another user's event, so the newest stored id is known: the reset hands it over as the cursor.
      const newest = await realtime.publish({ userId: "someone-else", type: "tick", detail: { n: 0 } });
      const page = await openPage(await contextAs("pat"), { cursor: "999999999999" });
      await waitFor(page, "rt:reset");
      // The reset's cursor stands at the newest stored event (a bare id, or a token that starts with it).
      const resetCursor = await lastResetCursor(page);
      expect(resetCursor).toMatch(new RegExp(`^${newest.id}(\\.|$)`));
      expect(await page.evaluate(() => window.pgrealtime?.connection?.lastEventId)).toBe(resetCursor);

      // Two losses before any event arrives: only the reset can have moved the cursor.
      app.cutStreams("pat");
      await waitFor(page, "rt:connected", 2);
      const gate = app.gateNext("pat");
      app.cutStreams("pat");
      await gate.arrived;
      const missed = await realtime.publish({ userId: "pat", type: "tick", detail: { n: 1 } });
      gate.release();
      await waitFor(page, "rt:connected", 3);
      const live = await realtime.publish({ userId: "pat", type: "tick", detail: { n: 2 } });
      const done = await settle(page);

      expect(await countOf(page, "rt:reset")).toBe(1);
      expect(await appEvents(page)).toEqual([heard(missed), heard(live), heard(done)]);
      const [initial, ...reconnects] = app.requestsOf("pat");
      expect(initial?.url.searchParams.get("lastEventId")).toBe("999999999999");
      expect(reconnects.map((r) => r.url.searchParams.get("lastEventId"))).toEqual([
        resetCursor,
        resetCursor,
      ]);
    });

    test("C08 with storage off, rt:reset clears the cursor: the reconnect carries none and gets no second reset", async () => {
      const page = await openPage(await contextAs("quinn"), { cursor: "5" }, volatileApp);
      await waitFor(page, "rt:reset");
      expect(await page.evaluate(() => window.pgrealtime?.connection?.lastEventId)).toBeNull();

      volatileApp.cutStreams("quinn");
      await waitFor(page, "rt:connected", 2);
      const live = await volatile.publish({ userId: "quinn", type: "tick", detail: { n: 1 } });
      await waitFor(page, "rt:tick");
      const done = await volatile.publishGlobal({ type: "done", detail: {} });
      await waitFor(page, "rt:done");

      expect((await recorded(page)).map((e) => e.type)).toEqual([
        "rt:connected",
        "rt:reset",
        "rt:disconnected",
        "rt:connected",
        "rt:tick",
        "rt:done",
      ]);
      expect((await recorded(page)).find((e) => e.type === "rt:reset")?.detail).toEqual({
        reason: "storage-off",
      });
      expect(await appEvents(page)).toEqual([heard(live), heard(done)]);
      expect(
        volatileApp
          .requestsOf("quinn")
          .map((r) => [r.url.searchParams.get("lastEventId"), r.lastEventIdHeader]),
      ).toEqual([
        ["5", undefined],
        [null, undefined],
      ]);
    });

    test("C10 after two cuts in a row the client still resumes from the last id it saw, with no duplicate", async () => {
      const page = await openPage(await contextAs("frank"));
      const e1 = await realtime.publish({ userId: "frank", type: "tick", detail: { n: 1 } });
      await waitFor(page, "rt:tick");

      app.cutStreams("frank");
      await waitFor(page, "rt:disconnected", 1);
      await waitFor(page, "rt:connected", 2);
      // Cut again before any new event: the second reconnect must not forget the cursor. An event
      // published while the page is away arrives on the resume, once.
      const gate = app.gateNext("frank");
      app.cutStreams("frank");
      await gate.arrived;
      const e2 = await realtime.publish({ userId: "frank", type: "tick", detail: { n: 2 } });
      gate.release();
      await waitFor(page, "rt:connected", 3);

      const e3 = await realtime.publish({ userId: "frank", type: "tick", detail: { n: 3 } });
      const done = await settle(page);
      expect(await appEvents(page)).toEqual([heard(e1), heard(e2), heard(e3), heard(done)]);

      const [initial, ...reconnects] = app.requestsOf("frank");
      expect(initial?.url.searchParams.has("lastEventId")).toBe(false);
      const c1 = await cursorOfEvent(page, e1.id);
      expect(reconnects.map((r) => r.url.searchParams.get("lastEventId"))).toEqual([c1, c1]);
      expect((await recorded(page)).map((e) => e.type).filter((t) => STATE_EVENTS.has(t))).toEqual([
        "rt:connected",
        "rt:disconnected",
        "rt:connected",
        "rt:disconnected",
        "rt:connected",
      ]);
    });

    test("C12 the client keeps trying through 503, 503 and connects on the 200, with its last id", async () => {
      const page = await openPage(await contextAs("grace"));
      const e1 = await realtime.publish({ userId: "grace", type: "tick", detail: { n: 1 } });
      await waitFor(page, "rt:tick");

      app.refuseNext("grace", 2);
      const gate = app.gateNext("grace");
      app.cutStreams("grace");
      await gate.arrived;
      const missed = await realtime.publish({ userId: "grace", type: "tick", detail: { n: 2 } });
      gate.release();
      await waitFor(page, "rt:connected", 2);

      const [, ...retries] = app.requestsOf("grace");
      const c1 = await cursorOfEvent(page, e1.id);
      expect(retries.map((r) => r.url.searchParams.get("lastEventId"))).toEqual([c1, c1, c1]);
      // A refused attempt is no change of state: one disconnected, one connected.
      expect(await countOf(page, "rt:disconnected")).toBe(1);

      const e3 = await realtime.publish({ userId: "grace", type: "tick", detail: { n: 3 } });
      const done = await settle(page);
      expect(await appEvents(page)).toEqual([heard(e1), heard(missed), heard(e3), heard(done)]);
    });

    test("C12 a page whose first attempts are refused connects by itself once the server answers", async () => {
      app.refuseNext("heidi", 2);
      const page = await openPage(await contextAs("heidi"));
      expect(app.requestsOf("heidi")).toHaveLength(3);
      expect(await countOf(page, "rt:disconnected")).toBe(0);
      const event = await realtime.publish({ userId: "heidi", type: "tick", detail: { n: 1 } });
      const done = await settle(page);
      expect(await appEvents(page)).toEqual([heard(event), heard(done)]);
    });

    test("C10 ids already dispatched are dropped when a resume overlaps what the page has seen", async () => {
      const page = await openPage(await contextAs("mallory"), { auto: "false" });
      const tick = (id: string) => sse.event(id, "tick", { n: Number(id) });
      app.script(
        sse.connected() + tick("1") + tick("2") + tick("3"),
        sse.connected() + tick("2") + tick("3") + tick("4"),
        { hold: sse.connected() + tick("4") + tick("5") },
      );
      await connectIn(page, { url: "/scripted/events", retryBaseMs: 50 });
      await waitFor(page, "rt:tick", 5);

      expect((await appEvents(page)).map((e) => e.id)).toEqual(["1", "2", "3", "4", "5"]);
      expect(app.scriptedRequests.map((url) => url.searchParams.get("lastEventId"))).toEqual([
        null,
        "3",
        "4",
      ]);
      expect(await page.evaluate(() => window.pgrealtime?.connection?.lastEventId)).toBe("5");
    });

    test("event: reset fires rt:reset with its reason, and ids from before it no longer count as seen", async () => {
      const page = await openPage(await contextAs("nina"), { auto: "false" });
      app.script(sse.connected() + sse.event("7", "tick", { n: 1 }), {
        hold:
          sse.connected() + sse.reset("the last event id is unknown", "") + sse.event("7", "tick", { n: 2 }),
      });
      await connectIn(page, { url: "/scripted/events", retryBaseMs: 50 });
      await waitFor(page, "rt:tick", 2);

      expect(
        (await recorded(page)).filter((e) => e.type !== "rt:connected" && e.type !== "rt:disconnected"),
      ).toEqual([
        { type: "rt:tick", detail: { n: 1 }, id: "7", scope: "global", custom: true },
        { type: "rt:reset", detail: { reason: "the last event id is unknown" }, custom: true },
        { type: "rt:tick", detail: { n: 2 }, id: "7", scope: "global", custom: true },
      ]);
    });

    test("the id: line of event: reset becomes the cursor; an empty one means none", async () => {
      const page = await openPage(await contextAs("nils"), { auto: "false" });
      app.script(
        sse.connected() + sse.reset("unknown-id", "40"),
        sse.connected() + sse.reset("storage-off", ""),
        { hold: sse.connected() },
      );
      await connectIn(page, { url: "/scripted/events", lastEventId: "999", retryBaseMs: 50 });
      await waitFor(page, "rt:connected", 3);

      expect(app.scriptedRequests.map((url) => url.searchParams.get("lastEventId"))).toEqual([
        "999",
        "40",
        null,
      ]);
      expect(await countOf(page, "rt:reset")).toBe(2);
      expect(await page.evaluate(() => window.pgrealtime?.connection?.lastEventId)).toBeNull();
    });

    test("the id: line is an opaque cursor: resumes carry it, de-duplication goes by data.id, a frame without id: leaves the cursor", async () => {
      const page = await openPage(await contextAs("olga"), { auto: "false" });
      app.script(
        sse.connected() + sse.event("7", "tick", { n: 7 }, "7.abc.0"),
        // The same event under another cursor (a resume overlap): dropped, and the cursor stays; then an
        // event without an id: line, dispatched without moving the cursor either.
        sse.connected() +
          sse.event("7", "tick", { n: 70 }, "7.xyz.1") +
          sse.event("9", "tick", { n: 9 }, null),
        { hold: sse.connected() + sse.event("10", "tick", { n: 10 }, "10.abc.0") },
      );
      await connectIn(page, { url: "/scripted/events", retryBaseMs: 50 });
      await waitFor(page, "rt:tick", 3);

      expect((await appEvents(page)).map((e) => [e.id, e.detail])).toEqual([
        ["7", { n: 7 }],
        ["9", { n: 9 }],
        ["10", { n: 10 }],
      ]);
      expect(app.scriptedRequests.map((url) => url.searchParams.get("lastEventId"))).toEqual([
        null,
        "7.abc.0",
        "7.abc.0",
      ]);
      expect(await page.evaluate(() => window.pgrealtime?.connection?.lastEventId)).toBe("10.abc.0");
    });

    test("defence in depth (C36, C40): frames no publish can produce are never dispatched, never move the cursor or the seen ids", async () => {
      const page = await openPage(await contextAs("oscar"), { auto: "false" });
      const forged = (n: number, message: object) =>
        sse.raw(`${n}.forged.0`, { id: String(n), scope: "global", ...message });
      app.script(
        sse.connected() +
          sse.event("1", "tick", { n: 1 }, "1.a.0") +
          // A forged reset carrying id "2" must not make the real event 2 look seen.
          forged(2, { type: "reset", detail: { reason: "forged" } }) +
          sse.event("2", "tick", { n: 2 }, "2.a.0") +
          forged(3, { type: "connected", detail: { userId: "oscar" } }) +
          forged(4, { type: "disconnected", detail: {} }) +
          forged(5, { type: "error", detail: {} }) +
          forged(6, { type: "ping", detail: {} }) +
          forged(7, { type: "bad type", detail: {} }) +
          forged(8, { type: "x".repeat(101), detail: {} }) +
          forged(9, { type: "", detail: {} }) +
          forged(10, { type: "tick:42", detail: {} }) +
          forged(11, { type: 5, detail: {} }) +
          forged(12, { type: "tick", detail: [1] }) +
          forged(13, { type: "tick", detail: null }) +
          forged(14, { type: "tick", detail: "x" }) +
          forged(15, { type: "tick" }),
        { hold: sse.connected() + sse.event("20", "done", {}, "20.a.0") },
      );
      await connectIn(page, { url: "/scripted/events", retryBaseMs: 50 });
      await waitFor(page, "rt:done");

      expect((await recorded(page)).map((e) => [e.type, e.id ?? null])).toEqual([
        ["rt:connected", null],
        ["rt:tick", "1"],
        ["rt:tick", "2"],
        ["rt:disconnected", null],
        ["rt:connected", null],
        ["rt:done", "20"],
      ]);
      expect(app.scriptedRequests.map((url) => url.searchParams.get("lastEventId"))).toEqual([null, "2.a.0"]);
      expect(await page.evaluate(() => window.pgrealtime?.connection?.lastEventId)).toBe("20.a.0");
    });

    test("a stream request that is never answered is abandoned after heartbeatTimeoutMs and retried", async () => {
      const page = await openPage(await contextAs("ivan"), { auto: "false" });
      app.hangNext("ivan", 1);
      await connectIn(page, { heartbeatTimeoutMs: 500, retryBaseMs: 100 });
      await waitFor(page, "rt:connected");
      expect(app.requestsOf("ivan")).toHaveLength(2);
    });

    test("C33 a stalled stream is replaced when the page becomes visible again, resuming from the last id", async () => {
      const page = await openPage(await contextAs("judy"), { auto: "false" });
      const timeoutMs = 400;
      await connectIn(page, { heartbeatTimeoutMs: timeoutMs, retryBaseMs: 100 });
      await waitFor(page, "rt:connected");
      const e1 = await realtime.publish({ userId: "judy", type: "tick", detail: { n: 1 } });
      await waitFor(page, "rt:tick");

      app.stallStreams("judy");
      const lost = await realtime.publish({ userId: "judy", type: "tick", detail: { n: 2 } });
      // Headless Chromium keeps every page visible, so the page's visibility is set the way a browser
      // reports a backgrounded tab; the hidden time is the scenario itself, not a wait for an outcome.
      await setVisibility(page, "hidden");
      await new Promise((resolve) => setTimeout(resolve, timeoutMs * 2));
      expect(app.requestsOf("judy")).toHaveLength(1);
      await setVisibility(page, "visible");

      await waitFor(page, "rt:connected", 2);
      const [, ...reconnects] = app.requestsOf("judy");
      expect(reconnects.map((r) => r.url.searchParams.get("lastEventId"))).toEqual([
        await cursorOfEvent(page, e1.id),
      ]);
      const e3 = await realtime.publish({ userId: "judy", type: "tick", detail: { n: 3 } });
      const done = await settle(page);
      expect(await appEvents(page)).toEqual([heard(e1), heard(lost), heard(e3), heard(done)]);
    });

    test("C33 in a visible tab, a stalled stream is noticed by its missing heartbeats within heartbeatTimeoutMs and resumed from the last id", async () => {
      const timeoutMs = 1_200;
      const page = await openPage(await contextAs("uma"), { auto: "false" }, heartbeatingApp);
      await connectIn(page, { heartbeatTimeoutMs: timeoutMs, retryBaseMs: 100 });
      await waitFor(page, "rt:connected");
      const e1 = await heartbeating.publish({ userId: "uma", type: "tick", detail: { n: 1 } });
      await waitFor(page, "rt:tick");
      // The server's heartbeats reach the page as `ping` events; from the first one the client watches.
      await page.waitForFunction(() => window.__pings > 0, undefined, { timeout: 15_000 });

      heartbeatingApp.stallStreams("uma");
      const stalledAt = Date.now();
      const lost = await heartbeating.publish({ userId: "uma", type: "tick", detail: { n: 2 } });
      await waitFor(page, "rt:connected", 2);

      const [, reconnect, ...more] = heartbeatingApp.requestsOf("uma");
      expect(more).toEqual([]);
      expect(reconnect?.url.searchParams.get("lastEventId")).toBe(await cursorOfEvent(page, e1.id));
      // Silence counts from the last message, which came before the stall; the reconnect adds a backoff
      // under 100 ms, and the rest is slack for a loaded machine.
      expect((reconnect?.at ?? Number.POSITIVE_INFINITY) - stalledAt).toBeLessThan(timeoutMs + 1_000);

      const e3 = await heartbeating.publish({ userId: "uma", type: "tick", detail: { n: 3 } });
      await waitFor(page, "rt:tick", 3);
      const done = await heartbeating.publishGlobal({ type: "done", detail: {} });
      await waitFor(page, "rt:done");
      expect(await appEvents(page)).toEqual([heard(e1), heard(lost), heard(e3), heard(done)]);
      expect((await recorded(page)).map((e) => e.type).filter((t) => STATE_EVENTS.has(t))).toEqual([
        "rt:connected",
        "rt:disconnected",
        "rt:connected",
      ]);
      // Nothing here touched the page's visibility: the watchdog alone noticed.
      expect(await page.evaluate(() => document.visibilityState)).toBe("visible");
    });

    test("C02 a healthy idle stream is kept by its heartbeats: never cut in 3 × heartbeatTimeoutMs", async () => {
      const timeoutMs = 1_200;
      const page = await openPage(await contextAs("vera"), { auto: "false" }, heartbeatingApp);
      await connectIn(page, { heartbeatTimeoutMs: timeoutMs, retryBaseMs: 100 });
      await waitFor(page, "rt:connected");
      await page.waitForFunction(() => window.__pings > 0, undefined, { timeout: 15_000 });
      const pingsBefore = await page.evaluate(() => window.__pings);

      // An absence: nothing to wait for but the time itself.
      await new Promise((resolve) => setTimeout(resolve, 3 * timeoutMs));
      expect(heartbeatingApp.requestsOf("vera")).toHaveLength(1);
      expect(await countOf(page, "rt:disconnected")).toBe(0);
      expect(await page.evaluate(() => window.pgrealtime?.connection?.connected)).toBe(true);
      // Heartbeats did arrive all along (one at least every 300 ms).
      expect((await page.evaluate(() => window.__pings)) - pingsBefore).toBeGreaterThanOrEqual(6);
    });

    test("an idle stream is not cut before its first visible heartbeat (heartbeatTimeoutMs below the server's heartbeatMs)", async () => {
      const page = await openPage(await contextAs("kim"), { auto: "false" });
      await connectIn(page, { heartbeatTimeoutMs: 300 });
      await waitFor(page, "rt:connected");
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      expect(app.requestsOf("kim")).toHaveLength(1);
      expect(await countOf(page, "rt:disconnected")).toBe(0);
    });

    test("close() ends the stream for good: disconnected once, the server sees it go, no reconnect", async () => {
      const page = await openPage(await contextAs("leo"), { auto: "false" });
      await connectIn(page, { retryBaseMs: 50 });
      await waitFor(page, "rt:connected");
      const streams = realtime.connectionCount;

      await page.evaluate(() => window.pgrealtime?.connection?.close());
      await expect.poll(() => realtime.connectionCount, { timeout: 5_000 }).toBe(streams - 1);
      expect(await page.evaluate(() => window.pgrealtime?.connection?.connected)).toBe(false);
      await page.evaluate(() => window.pgrealtime?.connection?.close());
      expect(await countOf(page, "rt:disconnected")).toBe(1);

      await realtime.publish({ userId: "leo", type: "tick", detail: { n: 1 } });
      // Long past the 50 ms retry ceiling: a leftover timer or EventSource would have shown by now.
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(app.requestsOf("leo")).toHaveLength(1);
      expect(await appEvents(page)).toEqual([]);
    });
  },
);
