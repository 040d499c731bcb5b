// `connection.on` in real headless Chromium against the real server: the script tag's bundle, real
// EventSource, real PostgreSQL. A thin node:http layer in front of the realtime handler cuts streams and
// rewinds a resume's cursor, so the server itself replays events the page already has.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Browser, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { toNodeHandler } from "../src/adapters/node.js";
// For its `window.pgrealtime` declaration.
import type {} from "../src/client/auto.js";
import type { Realtime } from "../src/index.js";
import { CHROMIUM_SKIP_REASON, HAS_CHROMIUM, launchChromium } from "./support/chromium.js";
import { listen, migratedRealtime } from "./support/server.js";

/** What a page's `on` handler records of each call. */
interface Call {
  handler: string;
  detail: unknown;
  id: string;
  scope: string;
  replayOf: string | null;
  /** Whether the second argument is the DOM event itself (a `CustomEvent` whose detail is the first). */
  domEvent: boolean;
}

declare global {
  interface Window {
    __calls: Call[];
    /** `data.id` of every application frame the page's EventSources received, duplicates included. */
    __frameIds: string[];
    /** Messages of the errors the window reported (a throwing handler's). */
    __errors: string[];
    /** Unsubscribe functions `on` returned, by handler name. */
    __off: Record<string, () => void>;
  }
}

const PAGE = (scriptTag: string) => `<!doctype html>
<html>
<head>
<meta charset="utf-8">
<title>pgrealtime typed client test</title>
<script>
  window.__calls = [];
  window.__frameIds = [];
  window.__errors = [];
  window.__off = {};
  window.addEventListener("error", (e) => window.__errors.push(e.message));
  const NativeEventSource = window.EventSource;
  window.EventSource = class extends NativeEventSource {
    constructor(url, init) {
      super(url, init);
      this.addEventListener("message", (e) => {
        try { window.__frameIds.push(JSON.parse(e.data).id); } catch {}
      });
    }
  };
</script>
${scriptTag}
</head>
<body></body>
</html>`;

/** The app: the test page, and the realtime handler behind a layer that can cut streams and rewind a resume. */
async function startApp(realtime: Realtime) {
  const handler = toNodeHandler(realtime, { authenticate: userOf });
  const open = new Map<ServerResponse, string | null>();
  /** Per user: the cursor the next resume is sent back to, as if the client had lost what came after it. */
  const rewind = new Map<string | null, string>();
  const resumes: Array<{ user: string | null; sent: string | null; served: string | null }> = [];
  const app = await listen((req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    if (url.pathname === "/") {
      res
        .writeHead(200, { "Content-Type": "text/html; charset=utf-8" })
        .end(PAGE(realtime.scriptTag({ autoConnect: false })));
      return;
    }
    if (url.pathname === "/realtime/events") {
      const user = userOf(req);
      const cursor = rewind.get(user);
      if (cursor !== undefined && url.searchParams.has("lastEventId")) {
        rewind.delete(user);
        resumes.push({ user, sent: url.searchParams.get("lastEventId"), served: cursor });
        url.searchParams.set("lastEventId", cursor);
        req.url = `${url.pathname}${url.search}`;
      }
      open.set(res, user);
      res.once("close", () => open.delete(res));
    }
    handler(req, res);
  });
  return {
    url: app.url,
    resumes,
    /** Makes `user`'s next resume start from `cursor` (so the server replays what came after it). */
    rewindNext(user: string, cursor: string) {
      rewind.set(user, cursor);
    },
    /** Destroys the sockets of `user`'s open streams, as a network loss does. */
    cutStreams(user: string) {
      for (const [res, owner] of open) if (owner === user) res.socket?.destroy();
    },
    close: app.close,
  };
}

function userOf(req: IncomingMessage): string | null {
  return new URL(req.url ?? "/", "http://localhost").searchParams.get("user");
}

/** Connects the page as `user` and subscribes `handlers` with `connection.on`, each recording its calls. */
async function connectWith(page: Page, user: string, handlers: Array<{ name: string; type: string }>) {
  await page.evaluate(
    ({ user, handlers }) => {
      const global = window.pgrealtime;
      if (!global) throw new Error("window.pgrealtime is missing");
      const connection = global.connect({ url: `/realtime/events?user=${user}`, retryBaseMs: 50 });
      global.connection = connection;
      // Subscribed first, so that its throw comes before the others run.
      connection.on("tick", () => {
        throw new Error("handler failed on purpose");
      });
      for (const { name, type } of handlers) {
        window.__off[name] = connection.on(type, (detail, event) => {
          window.__calls.push({
            handler: name,
            detail: JSON.parse(JSON.stringify(detail)),
            id: event.id,
            scope: event.scope,
            replayOf: event.replayOf,
            domEvent: event instanceof CustomEvent && event.detail === detail,
          });
        });
      }
    },
    { user, handlers },
  );
  await page.waitForFunction(() => window.pgrealtime?.connection?.connected === true, null, {
    timeout: 15_000,
  });
}

async function calls(page: Page, handler: string): Promise<Call[]> {
  return (await page.evaluate(() => window.__calls)).filter((c) => c.handler === handler);
}

async function waitForCall(page: Page, handler: string, id: string): Promise<void> {
  await page.waitForFunction(
    ([name, eventId]) => window.__calls.some((c) => c.handler === name && c.id === eventId),
    [handler, id] as const,
    { timeout: 15_000 },
  );
}

describe.skipIf(!HAS_CHROMIUM)(
  HAS_CHROMIUM
    ? "typed client connection.on in headless Chromium"
    : `typed client (skipped: ${CHROMIUM_SKIP_REASON})`,
  () => {
    let realtime: Realtime;
    let app: Awaited<ReturnType<typeof startApp>>;
    let browser: Browser;
    const pages: Page[] = [];

    beforeAll(async () => {
      ({ realtime } = await migratedRealtime());
      app = await startApp(realtime);
      browser = await launchChromium();
    });

    afterEach(async () => {
      for (const page of pages.splice(0)) await page.context().close();
    });

    afterAll(async () => {
      await browser?.close();
      await app?.close();
      await realtime?.close();
    });

    async function openPage(): Promise<Page> {
      const page = await (await browser.newContext()).newPage();
      pages.push(page);
      await page.goto(`${app.url}/`);
      return page;
    }

    test("on() gets each event's detail once, through a resume that replays what the page already has, and a throwing handler stops no other", async () => {
      const page = await openPage();
      const start = await realtime.currentEventId();
      await connectWith(page, "ada", [
        { name: "first", type: "tick" },
        { name: "second", type: "tick" },
      ]);
      const t1 = await realtime.publish({ userId: "ada", type: "tick", detail: { n: 1 } });
      const t2 = await realtime.publishGlobal({
        type: "tick",
        detail: { n: 2, nested: { list: [1, "two"] } },
      });
      await waitForCall(page, "second", t2.id);

      // The resume goes back to before t1: the server sends t1 and t2 again, then t3.
      app.rewindNext("ada", start);
      app.cutStreams("ada");
      const t3 = await realtime.publish({ userId: "ada", type: "tick", detail: { n: 3 } });
      await waitForCall(page, "second", t3.id);

      expect(app.resumes).toHaveLength(1);
      // The page really received t1 and t2 twice: only de-duplication kept the handlers from a second call.
      const frames = await page.evaluate(() => window.__frameIds);
      expect(frames.filter((id) => id === t1.id)).toHaveLength(2);
      expect(frames.filter((id) => id === t2.id)).toHaveLength(2);
      const expected = [
        { id: t1.id, detail: { n: 1 }, scope: "user", replayOf: null, domEvent: true },
        {
          id: t2.id,
          detail: { n: 2, nested: { list: [1, "two"] } },
          scope: "global",
          replayOf: null,
          domEvent: true,
        },
        { id: t3.id, detail: { n: 3 }, scope: "user", replayOf: null, domEvent: true },
      ];
      for (const name of ["first", "second"]) {
        expect(await calls(page, name)).toEqual(expected.map((call) => ({ handler: name, ...call })));
      }
      // The throwing handler was reported once per event, like any throwing DOM listener.
      expect(await page.evaluate(() => window.__errors)).toEqual(
        Array.from({ length: 3 }, () => expect.stringContaining("handler failed on purpose")),
      );
    });

    test("the function on() returns unsubscribes that handler only; close() unsubscribes the rest", async () => {
      const page = await openPage();
      await connectWith(page, "bea", [
        { name: "leaving", type: "tick" },
        { name: "staying", type: "tick" },
        { name: "other", type: "done" },
      ]);
      const t1 = await realtime.publish({ userId: "bea", type: "tick", detail: { n: 1 } });
      await waitForCall(page, "leaving", t1.id);

      await page.evaluate(() => {
        window.__off.leaving?.();
        // A second call does nothing (and must not throw).
        window.__off.leaving?.();
      });
      const t2 = await realtime.publish({ userId: "bea", type: "tick", detail: { n: 2 } });
      const d1 = await realtime.publish({ userId: "bea", type: "done", detail: {} });
      await waitForCall(page, "other", d1.id);
      await waitForCall(page, "staying", t2.id);
      expect((await calls(page, "leaving")).map((c) => c.id)).toEqual([t1.id]);
      expect((await calls(page, "staying")).map((c) => c.id)).toEqual([t1.id, t2.id]);

      // After close(), a DOM event of the same name (as another connection on the page could dispatch)
      // reaches no handler of the closed connection.
      await page.evaluate(() => {
        window.pgrealtime?.connection?.close();
        window.dispatchEvent(new CustomEvent("rt:tick", { detail: { n: 99 } }));
        window.dispatchEvent(new CustomEvent("rt:done", { detail: {} }));
      });
      expect((await calls(page, "staying")).map((c) => c.id)).toEqual([t1.id, t2.id]);
      expect((await calls(page, "other")).map((c) => c.id)).toEqual([d1.id]);
    });
  },
);
