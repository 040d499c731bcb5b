/**
 * `pgrealtime/admin`: the admin page of a realtime instance. Server-rendered HTML, no build step, no CDN;
 * works without JavaScript except its live mode.
 *
 * @module
 */
import type { Realtime } from "../api.js";
import { hostOf } from "../dispatch.js";
import { refuseUnknownKeys } from "../event.js";
import type { EventMap } from "../types.js";
import { type Authorize, createAdminHandler } from "./handler.js";

export type { Authorize } from "./handler.js";

/** Options of {@link createAdmin}. */
export interface AdminOptions {
  /**
   * Decides every admin request, pages and assets alike: `true` (or a promise of it) allows it; any
   * other result, or throwing (logged through the instance's logger), answers `403`. Required: the
   * admin shows private data and replays events, so it is never open by default.
   */
  authorize: Authorize;
}

/**
 * Mounts the admin page at `{basePath}/admin` (default `/realtime/admin`):
 *
 * - `GET {basePath}/admin`: the stored events, newest first, with filters (type, scope, user, status,
 *   date range in UTC), search by id, pages of older events, "replay selected", and a live mode that
 *   prepends new events as they happen;
 * - `GET {basePath}/admin/events/<id>`: one event's detail, private data and delivery activity, and
 *   "replay";
 * - `GET {basePath}/admin/overview`: the processes listening now, the NOTIFY queue's usage, the
 *   migration and the table, and this process's counters.
 *
 * Replays are POSTs protected against cross-site requests (`Sec-Fetch-Site`, `Origin`, and a
 * double-submit token); a GET never changes anything. Every answer carries a strict
 * Content-Security-Policy, `X-Content-Type-Options: nosniff`, `Referrer-Policy: same-origin` and
 * `Cache-Control: no-store`. Needs `storage: true` (the default).
 *
 * The admin is registered on the instance, so `realtime.handler` and `toNodeHandler(realtime)` serve
 * it too; the returned handler is for mounting it alone. `realtime.close()` ends its live streams.
 *
 * @returns a Fetch handler for `{basePath}/admin` and below (`404` for any other path).
 * @throws TypeError when `authorize` is not a function, on an unknown option, when `realtime` is not
 *   what `createRealtime` returned, or when that instance already has an admin page.
 * @example
 * import { createAdmin } from "pgrealtime/admin";
 *
 * createAdmin(realtime, { authorize: async (request) => (await sessionOf(request))?.isStaff === true });
 * // Served by what already serves the stream:
 * app.use(toNodeHandler(realtime, { authenticate: (req) => req.session?.userId ?? null }));
 */
export function createAdmin<Events extends EventMap>(
  realtime: Realtime<Events>,
  options: AdminOptions,
): (request: Request) => Promise<Response> {
  const host = hostOf(realtime);
  if (typeof options !== "object" || options === null) {
    throw new TypeError("createAdmin: expected options { authorize: (request) => boolean }");
  }
  refuseUnknownKeys(options, ["authorize"], "createAdmin", "option");
  if (typeof options.authorize !== "function") {
    throw new TypeError(
      "createAdmin: authorize must be a function (request: Request) => boolean | Promise<boolean>; " +
        "the admin page shows private data and replays events, so it is never open without one",
    );
  }
  if (host.admin) throw new TypeError("createAdmin: this realtime instance already has an admin page");
  if (!host.storage) {
    throw new TypeError(
      "createAdmin: the admin page reads the events table; this instance has storage: false",
    );
  }
  const admin = createAdminHandler(realtime as unknown as Realtime, {
    basePath: host.basePath,
    heartbeatMs: host.heartbeatMs,
    retryMs: host.retryMs,
    logger: host.logger,
    authorize: options.authorize,
  });
  host.admin = admin;
  return admin.handle;
}
