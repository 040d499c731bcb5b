// The admin page served for a test: a migrated instance with `createAdmin`, behind `toNodeHandler` on a
// real server, and what a test needs to act as a signed-in staff member's browser.
import { onTestFinished } from "vitest";
import { toNodeHandler } from "../../src/adapters/node.js";
import { type Authorize, createAdmin } from "../../src/admin/index.js";
import type { RealtimeOptions } from "../../src/index.js";
import { type RecordingLogger, recordingLogger } from "./observe.js";
import { listen, migratedRealtime } from "./server.js";

/** The cookie that makes a request a staff member's in these tests. */
export const STAFF_COOKIE = "staff=yes";

/** Allows a request carrying {@link STAFF_COOKIE}. */
export const staffOnly: Authorize = (request) =>
  /(?:^|;\s*)staff=yes(?:;|$)/.test(request.headers.get("cookie") ?? "");

/**
 * A migrated instance with its admin page, served by `toNodeHandler` (streams signed in by `?user=`),
 * all closed when the test ends.
 */
export async function servedAdmin(options: Partial<RealtimeOptions> = {}, authorize: Authorize = staffOnly) {
  const logger: RecordingLogger = recordingLogger();
  const { realtime, schema } = await migratedRealtime({ logger, ...options });
  onTestFinished(() => realtime.close());
  const handle = createAdmin(realtime, { authorize });
  const server = await listen(
    toNodeHandler(realtime, {
      authenticate: (req) => new URL(req.url ?? "/", "http://localhost").searchParams.get("user"),
    }),
  );
  onTestFinished(() => server.close());
  await realtime.ready();
  return { realtime, schema, logger, handle, url: server.url, admin: `${server.url}/realtime/admin` };
}

/**
 * A staff member's session: one GET (of admin.css) receives the token cookie; then every request
 * sends both cookies (staff and token). `token` is what the page's hidden form field holds.
 */
export async function staffSession(admin: string) {
  const first = await fetch(`${admin}/admin.css`, { headers: { cookie: STAFF_COOKIE } });
  const setCookie = first.headers.get("set-cookie") ?? "";
  const token = /pgrealtime-admin-csrf=([^;]+)/.exec(setCookie)?.[1];
  if (!token) throw new Error(`no token cookie in ${JSON.stringify(setCookie)}`);
  const cookie = `${STAFF_COOKIE}; pgrealtime-admin-csrf=${token}`;
  return {
    token,
    cookie,
    get: (path: string, headers: Record<string, string> = {}) =>
      fetch(`${admin}${path}`, { headers: { cookie, ...headers }, redirect: "manual" }),
    /** POSTs a urlencoded form to `{admin}/replay` as the admin's own page does (same origin). */
    replay: (fields: Array<[string, string]>, headers: Record<string, string> = {}) =>
      fetch(`${admin}/replay`, {
        method: "POST",
        redirect: "manual",
        headers: {
          cookie,
          origin: new URL(admin).origin,
          "sec-fetch-site": "same-origin",
          "content-type": "application/x-www-form-urlencoded",
          ...headers,
        },
        body: new URLSearchParams(fields).toString(),
      }),
  };
}
