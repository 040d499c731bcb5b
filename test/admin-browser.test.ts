// The admin page in real headless Chromium against the real server and PostgreSQL: filter, open,
// replay (reaching a separately connected client), a refused cross-site replay, escaping, live mode.
import type { IncomingMessage } from "node:http";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { toNodeHandler } from "../src/adapters/node.js";
import { createAdmin } from "../src/admin/index.js";
import type { Realtime } from "../src/index.js";
import { staffOnly } from "./support/admin.js";
import { CHROMIUM_SKIP_REASON, HAS_CHROMIUM, launchChromium } from "./support/chromium.js";
import { listen, migratedRealtime } from "./support/server.js";

const XSS_USER = "<img src=x onerror=alert(1)>";

declare global {
  interface Window {
    __heard: Array<{ type: string; id: string; replayOf: string | null; detail: unknown }>;
    __pwned?: number;
  }
}

function userOf(req: IncomingMessage): string | null {
  const cookie = /(?:^|;\s*)user=([^;]+)/.exec(req.headers.cookie ?? "");
  return cookie?.[1] ? decodeURIComponent(cookie[1]) : null;
}

/** The app's own page: a pgrealtime client recording every `rt:<type>` it hears, with `e.replayOf`. */
function clientPage(realtime: Realtime, types: string[]): string {
  return `<!doctype html><html><head><meta charset="utf-8"><script>
  window.__heard = [];
  for (const type of ${JSON.stringify(types)}) {
    window.addEventListener("rt:" + type, (e) => {
      window.__heard.push({ type, id: e.id, replayOf: e.replayOf, detail: e.detail });
    });
  }
</script>${realtime.scriptTag()}</head><body></body></html>`;
}

describe.skipIf(!HAS_CHROMIUM)(
  HAS_CHROMIUM ? "the admin page in headless Chromium" : `admin page (skipped: ${CHROMIUM_SKIP_REASON})`,
  () => {
    let realtime: Realtime;
    let browser: Browser;
    let app: Awaited<ReturnType<typeof listen>>;
    let evil: Awaited<ReturnType<typeof listen>>;
    const contexts: BrowserContext[] = [];
    /** What the admin pages logged to the console (a CSP violation would show here). */
    const consoleErrors: string[] = [];

    beforeAll(async () => {
      ({ realtime } = await migratedRealtime());
      createAdmin(realtime, { authorize: staffOnly });
      const handler = toNodeHandler(realtime, { authenticate: userOf });
      app = await listen((req, res) => {
        if (req.url === "/client") {
          res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
          res.end(clientPage(realtime, ["order_shipped", "ticket"]));
        } else handler(req, res);
      });
      // Another origin of the same site (another port): the browser sends the admin's cookies along.
      evil = await listen((req, res) => {
        const id = new URL(req.url ?? "/", "http://x").searchParams.get("id") ?? "";
        res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
        res.end(`<!doctype html><form method="post" action="${app.url}/realtime/admin/replay">
<input name="id" value="${id}"><input name="csrf" value="${"A".repeat(43)}">
<button id="go">win a prize</button></form>`);
      });
      await realtime.ready();
      browser = await launchChromium();
    });

    afterEach(async () => {
      for (const context of contexts.splice(0)) await context.close();
      expect(consoleErrors.splice(0)).toEqual([]);
    });

    afterAll(async () => {
      await browser?.close();
      await evil?.close();
      await app?.close();
      await realtime?.close();
    });

    async function context(cookies: Record<string, string>): Promise<BrowserContext> {
      const created = await browser.newContext();
      contexts.push(created);
      const list = Object.entries(cookies).map(([name, value]) => ({ name, value, url: app.url }));
      if (list.length > 0) await created.addCookies(list);
      return created;
    }

    /** A staff member's admin page; console errors and dialogs are recorded. */
    async function adminPage(path = ""): Promise<Page> {
      const page = await (await context({ staff: "yes" })).newPage();
      page.on("console", (message) => {
        if (message.type() === "error") consoleErrors.push(message.text());
      });
      page.on("dialog", (dialog) => {
        consoleErrors.push(`dialog: ${dialog.message()}`);
        void dialog.dismiss();
      });
      page.on("pageerror", (error) => consoleErrors.push(String(error)));
      await page.goto(`${app.url}/realtime/admin${path}`);
      return page;
    }

    async function columnOf(page: Page, column: number): Promise<string[]> {
      return page.$$eval(`#events tr td:nth-child(${column})`, (cells) =>
        cells.map((c) => c.textContent ?? ""),
      );
    }

    test("filter the list, open an event, replay it: the replay reaches a connected client with e.replayOf", async () => {
      const customer = await (await context({ user: "cust-1" })).newPage();
      await customer.goto(`${app.url}/client`);
      await customer.waitForFunction(() => window.pgrealtime?.connection?.connected === true);

      const original = await realtime.publish({
        userId: "cust-1",
        type: "order_shipped",
        detail: { order: 77, carrier: "post" },
        privateData: { address: "1 Main St" },
      });
      await realtime.publishGlobal({ type: "ticket", detail: { n: 1 } });
      await customer.waitForFunction(() => window.__heard.length === 2);

      const admin = await adminPage();
      await admin.fill('input[name="type"]', "order_shipped");
      await Promise.all([
        admin.waitForURL(/\?type=order_shipped/),
        admin.click('form.filters button[type="submit"]'),
      ]);
      expect(new Set(await columnOf(admin, 3))).toEqual(new Set(["order_shipped"]));
      expect(await columnOf(admin, 2)).toContain(original.id);

      await Promise.all([
        admin.waitForURL(/\/events\/\d+$/),
        admin.click(`a[href$="/events/${original.id}"]`),
      ]);
      expect(await admin.textContent("h1")).toBe(`Event ${original.id}`);
      expect(JSON.parse((await admin.textContent("#detail")) ?? "")).toEqual({ order: 77, carrier: "post" });
      expect(JSON.parse((await admin.textContent("#private-data")) ?? "")).toEqual({ address: "1 Main St" });

      await Promise.all([
        admin.waitForURL((url) => !url.pathname.endsWith(`/${original.id}`)),
        admin.click('form button:text-is("Replay")'),
      ]);
      const replayId = admin.url().split("/").at(-1) ?? "";
      expect(await admin.textContent("h1")).toBe(`Event ${replayId}`);
      expect(await admin.textContent("dl.facts")).toContain(original.id);

      await customer.waitForFunction(() => window.__heard.length === 3);
      expect((await customer.evaluate(() => window.__heard)).at(-1)).toEqual({
        type: "order_shipped",
        id: replayId,
        replayOf: original.id,
        detail: { order: 77, carrier: "post" },
      });
    });

    test("a cross-site replay (a form on another origin posting to the admin) is 403 and replays nothing", async () => {
      const target = await realtime.publishGlobal({ type: "ticket", detail: { n: 2 } });
      const before = await realtime.currentEventId();
      // The victim has an admin session: their browser holds the staff and token cookies.
      const admin = await adminPage();
      const page = await admin.context().newPage();
      await page.goto(`${evil.url}/?id=${target.id}`);
      const [response] = await Promise.all([
        page.waitForResponse((r) => r.url().endsWith("/realtime/admin/replay")),
        page.click("#go"),
      ]);
      expect(response.status()).toBe(403);
      expect(await response.text()).toContain("Refused");
      expect(await realtime.currentEventId()).toBe(before);
    });

    test("markup in the user id and detail is shown as text: no script runs, no element is injected", async () => {
      const event = await realtime.publish({
        userId: XSS_USER,
        type: "ticket",
        detail: {
          html: `<img src=x onerror="window.__pwned=1">`,
          script: "<script>window.__pwned=2</script>",
          '<b onmouseover="window.__pwned=3">key</b>': true,
        },
      });
      for (const path of [`/events/${event.id}`, `?user=${encodeURIComponent(XSS_USER)}`]) {
        const page = await adminPage(path);
        expect(await page.evaluate(() => window.__pwned)).toBeUndefined();
        expect(await page.$$("main img, main script, main b")).toHaveLength(0);
        expect(await page.textContent("main")).toContain(XSS_USER);
      }
      const page = await adminPage(`/events/${event.id}`);
      expect(await page.textContent("#user")).toBe(XSS_USER);
      expect(JSON.parse((await page.textContent("#detail")) ?? "")).toEqual(event.detail);
    });

    test("live mode prepends events published after the page loaded, user ids as text", async () => {
      const page = await adminPage();
      const firstBefore = (await columnOf(page, 2))[0];
      await page.check("#live");
      await page.waitForFunction(() => document.body.dataset.live === "connected");
      const event = await realtime.publish({ userId: XSS_USER, type: "ticket", detail: { n: 3 } });
      await page.waitForFunction(
        (id) => document.querySelector("#events tr td:nth-child(2)")?.textContent === id,
        event.id,
      );
      expect((await columnOf(page, 5))[0]).toBe(XSS_USER);
      expect((await columnOf(page, 2))[1]).toBe(firstBefore);
      expect(await page.$$("main img")).toHaveLength(0);
      // The new row is a normal row: its link opens the event, its checkbox is part of the replay form.
      expect(await page.getAttribute("#events tr:first-child a", "href")).toBe(
        `/realtime/admin/events/${event.id}`,
      );
      expect(await page.getAttribute('#events tr:first-child input[name="id"]', "value")).toBe(event.id);
      await page.uncheck("#live");
      await page.waitForFunction(() => document.body.dataset.live === "off");
    });
  },
);
