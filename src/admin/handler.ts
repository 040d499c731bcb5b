// The admin's route table and what every answer goes through: `authorize` first (anything but `true`
// is 403), then the route and its method, then the security headers on whatever the route answered.
import type { Realtime } from "../api.js";
import type { AdminMount } from "../dispatch.js";
import { RealtimeError } from "../errors.js";
import { PROMETHEUS_CONTENT_TYPE, prometheusText } from "../metrics.js";
import type { Logger } from "../types.js";
import { assetResponse } from "./assets.js";
import { tokenOf } from "./csrf.js";
import { eventPage } from "./event-page.js";
import { type AdminContext, errorPage } from "./layout.js";
import { findEvent, listPage } from "./list.js";
import { LiveFeed } from "./live.js";
import { overviewPage } from "./overview.js";
import { replayAction } from "./replay.js";

/** Who may use the admin: `true` allows the request; anything else, or throwing, answers `403`. */
export type Authorize = (request: Request) => boolean | Promise<boolean>;

interface Route {
  method: "GET" | "POST";
  /** `param` is the pattern's first group, if it has one. */
  handle(context: AdminContext, param: string): Response | Promise<Response>;
}

/** An `authorize` that has not settled by then refuses the request (403), so no admin request hangs. */
const AUTHORIZE_TIMEOUT_MS = 10_000;

/** Sent with every admin answer, refusals included. No inline script or style exists to allow. */
const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "Content-Security-Policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "same-origin",
};

/** `{basePath}/admin/metrics`: this process's counters as Prometheus text. */
function metricsResponse(realtime: Realtime): Response {
  return new Response(prometheusText(realtime.stats()), {
    headers: { "Content-Type": PROMETHEUS_CONTENT_TYPE, "Cache-Control": "no-store" },
  });
}

/** The admin of one realtime instance: its handler and the close of its live streams. */
export function createAdminHandler(
  realtime: Realtime,
  options: { basePath: string; heartbeatMs: number; retryMs: number; logger: Logger; authorize: Authorize },
): AdminMount {
  const { basePath, logger, authorize } = options;
  const prefix = `${basePath}/admin`;
  const feed = new LiveFeed(realtime, options);
  const get = (handle: Route["handle"]): Route => ({ method: "GET", handle });
  // Paths below `{basePath}/admin`, first match wins.
  const routes: Array<[RegExp, Route]> = [
    [/^\/?$/, get(listPage)],
    [/^\/events$/, get(findEvent)],
    [/^\/events\/([^/]+)$/, get(eventPage)],
    [/^\/overview$/, get(overviewPage)],
    [/^\/replay$/, { method: "POST", handle: replayAction }],
    [/^\/live$/, get((context) => feed.serve(context.request))],
    [/^\/(admin\.css|admin\.js)$/, get((_, name) => assetResponse(name))],
    [/^\/metrics$/, get(({ realtime }) => metricsResponse(realtime))],
  ];

  async function handle(request: Request): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname !== prefix && !url.pathname.startsWith(`${prefix}/`)) return text(404, "Not found");
    if (!(await allowed(request))) return text(403, "Forbidden");
    const rest = url.pathname.slice(prefix.length);
    const found = routes.find(([pattern]) => pattern.test(rest));
    if (!found) return text(404, "Not found");
    const [pattern, route] = found;
    // HEAD is a GET without its body (uptime checks, `curl -I`); it changes nothing either.
    const head = request.method === "HEAD" && route.method === "GET";
    if (request.method !== route.method && !head) {
      return text(405, "Method not allowed", { Allow: route.method === "GET" ? "GET, HEAD" : route.method });
    }
    const { token, setCookie } = tokenOf(request, prefix);
    const context: AdminContext = { realtime, request, url, basePath, prefix, token, logger };
    let response: Response;
    try {
      response = await route.handle(context, pattern.exec(rest)?.[1] ?? "");
    } catch (error) {
      response = failure(context, error);
    }
    if (setCookie) response.headers.append("Set-Cookie", setCookie);
    if (head) {
      await response.body?.cancel();
      response = new Response(null, { status: response.status, headers: response.headers });
    }
    return secured(response);
  }

  async function allowed(request: Request): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    try {
      const verdict = await Promise.race([
        Promise.resolve().then(() => authorize(request)),
        new Promise<"timeout">((resolve) => {
          timer = setTimeout(() => resolve("timeout"), AUTHORIZE_TIMEOUT_MS);
        }),
      ]);
      if (verdict === "timeout") {
        logger.error(
          `pgrealtime: the admin's authorize did not settle within ${AUTHORIZE_TIMEOUT_MS} ms; request refused`,
        );
      }
      return verdict === true;
    } catch (error) {
      logger.error({ err: error }, "pgrealtime: the admin's authorize threw; request refused");
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  return { handle, close: () => feed.close() };
}

/** Bad input is the user's to fix (400, 404, with the library's message); anything else is logged. */
function failure(context: AdminContext, error: unknown): Response {
  if (error instanceof TypeError || error instanceof RangeError)
    return errorPage(context, 400, error.message);
  // A string comparison, so the page knows NOT_FOUND whichever codes this version's RealtimeError has.
  const code: string | undefined = error instanceof RealtimeError ? error.code : undefined;
  if (code === "NOT_FOUND") return errorPage(context, 404, (error as Error).message);
  context.logger.error({ err: error }, "pgrealtime: an admin request failed");
  // The library's own errors say what to do (STORAGE_OFF, MIGRATION_REQUIRED); others stay in the log.
  const message = code ? (error as Error).message : "Internal error; see the server's log.";
  return errorPage(context, 500, message);
}

function text(status: number, message: string, headers: Record<string, string> = {}): Response {
  return secured(
    new Response(`${message}\n`, {
      status,
      headers: { "Content-Type": "text/plain; charset=utf-8", ...headers },
    }),
  );
}

function secured(response: Response): Response {
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) response.headers.set(name, value);
  if (!response.headers.has("Cache-Control")) response.headers.set("Cache-Control", "no-store");
  return response;
}
