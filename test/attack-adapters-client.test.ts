// Attacks on the typed client's `connection.on` in real headless Chromium, served through the Hono
// adapter: handlers that unsubscribe themselves, each other, re-subscribe, or close the connection while
// the very event that called them is being dispatched.
import { getRequestListener } from "@hono/node-server";
import { Hono } from "hono";
import { describe, expect, it, onTestFinished } from "vitest";
import { realtimeMiddleware } from "../src/adapters/hono.js";
// For its `window.pgrealtime` declaration.
import type {} from "../src/client/auto.js";
import { HAS_CHROMIUM, launchChromium } from "./support/chromium.js";
import { listen, migratedRealtime } from "./support/server.js";

declare global {
  interface Window {
    __a: string[];
    __b: string[];
    __bConnected: () => boolean;
  }
}

describe.skipIf(!HAS_CHROMIUM)("connection.on in headless Chromium", () => {
  it("attack: handlers that unsubscribe themselves or others, re-subscribe, or close() mid-dispatch", async () => {
    const { realtime } = await migratedRealtime();
    onTestFinished(() => realtime.close());
    const app = new Hono();
    app.use(realtimeMiddleware(realtime));
    app.get("/", (c) =>
      c.html(`<!doctype html><title>on</title>${realtime.scriptTag({ autoConnect: false })}`),
    );
    const server = await listen(getRequestListener(app.fetch));
    onTestFinished(() => server.close());
    await realtime.ready();
    const browser = await launchChromium();
    onTestFinished(() => browser.close());
    const page = await browser.newPage();
    await page.goto(`${server.url}/`);
    await page.waitForFunction(() => window.pgrealtime !== undefined);
    await page.evaluate(() => {
      const { connect } = window.pgrealtime as NonNullable<Window["pgrealtime"]>;
      const a: string[] = [];
      const b: string[] = [];
      window.__a = a;
      window.__b = b;
      const targetA = new EventTarget();
      const A = connect({ target: targetA, retryBaseMs: 50 });
      const offSelf = A.on("tick", (_d, e) => {
        a.push(`self:${e.id}`);
        offSelf();
      });
      let offVictim: (() => void) | undefined;
      A.on("tick", (_d, e) => {
        a.push(`killer:${e.id}`);
        offVictim?.();
      });
      offVictim = A.on("tick", (_d, e) => a.push(`victim:${e.id}`));
      const twice = (_d: unknown, e: { id: string }) => a.push(`twice:${e.id}`);
      const offFirst = A.on("tick", twice);
      A.on("tick", twice);
      offFirst();
      offFirst();
      let offRe: () => void;
      const again = (_d: unknown, e: { id: string }) => {
        a.push(`again:${e.id}`);
        offRe();
        offRe = A.on("tick", again);
      };
      offRe = A.on("tick", again);
      targetA.addEventListener("rt:tick:x", (e) => a.push(`entity:${(e as unknown as { id: string }).id}`));
      A.on("connected", () => a.push("connected"));

      const targetB = new EventTarget();
      const B = connect({ target: targetB, retryBaseMs: 50 });
      B.on("tick", (_d, e) => {
        b.push(`closer:${e.id}`);
        B.close();
      });
      B.on("tick", (_d, e) => b.push(`after-close:${e.id}`));
      targetB.addEventListener("rt:tick:x", (e) => b.push(`entity:${(e as unknown as { id: string }).id}`));
      window.__bConnected = () => B.connected;
      B.on("connected", () => b.push("connected"));
    });
    await expect.poll(() => realtime.connectionCount, { timeout: 10_000 }).toBe(2);
    await page.waitForFunction(() => window.__a.includes("connected") && window.__b.includes("connected"));
    const first = await realtime.publishGlobal({ type: "tick", detail: { ":id": "x" } });
    await page.waitForFunction(
      (id) => window.__a.includes(`entity:${id}`) && window.__b.length > 1,
      first.id,
    );
    const second = await realtime.publishGlobal({ type: "tick", detail: { ":id": "x" } });
    await page.waitForFunction((id) => window.__a.includes(`entity:${id}`), second.id);
    const [a, b, bConnected] = await page.evaluate(
      () => [window.__a, window.__b, window.__bConnected()] as const,
    );
    expect(a).toEqual([
      "connected",
      `self:${first.id}`,
      `killer:${first.id}`,
      // victim: removed by killer before its turn; twice: one of its two subscriptions left;
      // again: re-subscribed while dispatching, so not called twice for the same event.
      `twice:${first.id}`,
      `again:${first.id}`,
      `entity:${first.id}`,
      `killer:${second.id}`,
      `twice:${second.id}`,
      `again:${second.id}`,
      `entity:${second.id}`,
    ]);
    // close() from inside a handler: no later handler, no rt:tick:x, nothing of the second event.
    expect(b).toEqual(["connected", `closer:${first.id}`]);
    expect(bConnected).toBe(false);
    await expect.poll(() => realtime.connectionCount).toBe(1);
  });
});
