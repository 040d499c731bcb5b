// @ts-check
// Screenshots of the admin page for the README: a realtime instance with sample data (its own schema,
// recreated each run) against DATABASE_URL or an embedded PostgreSQL, the admin served by toNodeHandler,
// list and event page opened in headless Chromium, written to docs/admin-list.png and docs/admin-event.png.
// Run with `npm run screenshots` (CHROMIUM_PATH overrides /usr/bin/chromium).
import { mkdirSync } from "node:fs";
import http from "node:http";
import pg from "pg";
import { chromium } from "playwright-core";
import { toNodeHandler } from "../dist/adapters/node.js";
import { createAdmin } from "../dist/admin/index.js";
import { createRealtime } from "../dist/index.js";
import { startPostgres } from "./postgres.mjs";

const SCHEMA = "pgrealtime_screenshots";
const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"];

const postgres = await startPostgres();
const { connectionString } = postgres;
const admin = new pg.Client({ connectionString });
await admin.connect();
await admin.query(`drop schema if exists "${SCHEMA}" cascade`);
await admin.end();

const realtime = createRealtime({ connectionString, schema: SCHEMA });
await realtime.migrate();
createAdmin(realtime, { authorize: () => true });
const server = http.createServer(
  toNodeHandler(realtime, {
    authenticate: (req) => new URL(req.url ?? "/", "http://localhost").searchParams.get("user"),
  }),
);
await new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(undefined)));
const address = server.address();
const base = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;

// Two signed-in tabs of user 42 and one anonymous page, so the activity log has deliveries to show.
const streams = ["42", "42", null].map((user) => {
  const controller = new AbortController();
  const url = `${base}/realtime/events${user ? `?user=${user}` : ""}`;
  // Aborted at the end: that rejection is the expected end of the stream.
  fetch(url, { signal: controller.signal })
    .then((response) => response.body?.pipeTo(new WritableStream()))
    .catch(() => {});
  return controller;
});
await realtime.ready();
while (realtime.connectionCount < streams.length) await new Promise((resolve) => setTimeout(resolve, 50));

const featured = await publishSamples();
// Activity is written in batches about a second after the delivery.
await new Promise((resolve) => setTimeout(resolve, 1_500));

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
  args: CHROMIUM_ARGS,
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 760 }, deviceScaleFactor: 1 });
  mkdirSync("docs", { recursive: true });
  await page.goto(`${base}/realtime/admin`);
  await page.screenshot({ path: "docs/admin-list.png" });
  await page.goto(`${base}/realtime/admin/events/${featured}`);
  await page.screenshot({ path: "docs/admin-event.png", fullPage: true });
  console.log("wrote docs/admin-list.png and docs/admin-event.png");
} finally {
  await browser.close();
  for (const stream of streams) stream.abort();
  await realtime.close();
  server.close();
  await postgres.stop();
}

/** A morning of a small shop's events; resolves to the id of the one the event page shows. */
async function publishSamples() {
  await realtime.publishGlobal({ type: "maintenance_notice", detail: { at: "22:00 UTC", minutes: 15 } });
  for (const { user, order } of [
    { user: "17", order: 1041 },
    { user: "42", order: 1042 },
    { user: "8", order: 1043 },
  ]) {
    await realtime.publish({
      userId: user,
      type: "order_paid",
      detail: { ":id": order, total: "49.90", currency: "EUR" },
      privateData: { paymentIntent: `pi_${order}` },
    });
  }
  await realtime.publishSystem({ type: "invoice_generated", userId: 42, detail: { invoice: "2024-0042" } });
  const shipped = await realtime.publish({
    userId: 42,
    type: "order_shipped",
    detail: {
      ":id": 1042,
      carrier: "DHL",
      tracking: "JD014600006281234567",
      items: [{ sku: "MUG-01", qty: 2 }],
    },
    privateData: { address: { name: "Ada Lovelace", street: "12 St James's Square", city: "London" } },
  });
  await realtime.publish({ userId: 17, type: "chat_message", detail: { room: "support", text: "Hi!" } });
  await realtime.publishGlobal({ type: "stock_changed", detail: { sku: "MUG-01", left: 3 } });
  await realtime.replay(shipped.id);
  return shipped.id;
}
