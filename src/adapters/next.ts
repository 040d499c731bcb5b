import { hostOf } from "../dispatch.js";
import { refuseUnknownKeys } from "../event.js";
import type { Realtime } from "../realtime.js";
import type { EventMap, UserId } from "../types.js";
import { serveFetch } from "./fetch.js";

const NOT_FOUND = { status: 404, headers: { "Content-Type": "text/plain; charset=utf-8" } };

/** Options of {@link createRouteHandlers}. */
export interface NextRouteHandlersOptions {
  /**
   * Who the stream's request belongs to: the user id, or `null` (or `undefined`) for anonymous. Gets
   * the route's request (a `NextRequest`, which is a `Request`: read `request.cookies`, a header, or
   * call your auth library's `auth()` here). Runs once per stream; may be async; a throw answers `500`
   * (logged), never an anonymous stream. Default: the realtime instance's own `authenticate`; without
   * one, every stream is anonymous.
   */
  authenticate?: (request: Request) => UserId | null | undefined | Promise<UserId | null | undefined>;
}

/** A Next.js App Router route handler; Next's second argument (`{ params }`) is not needed. */
export type NextRouteHandler = (request: Request) => Promise<Response>;

/** What {@link createRouteHandlers} returns: export the methods your route serves. */
export interface NextRouteHandlers {
  /** `{basePath}/events`, `/client.js` and the admin page's pages; `404` for other paths. */
  GET: NextRouteHandler;
  /** As `GET` without a body (Next derives `HEAD` from `GET` when this is not exported). */
  HEAD: NextRouteHandler;
  /** Only the admin page's actions (replay) use it: export it when `createAdmin` is mounted. */
  POST: NextRouteHandler;
}

/**
 * Route handlers for a Next.js App Router catch-all route whose folder is the instance's `basePath`
 * (`app/realtime/[...path]/route.ts` for the default `/realtime`). They serve `GET {basePath}/events`
 * (the event stream, as a streamed `Response`), `GET {basePath}/client.js` and, once `createAdmin`
 * mounted it, `{basePath}/admin…`; any other path below the route answers `404`.
 *
 * The route must run on the Node.js runtime (pgrealtime holds PostgreSQL connections: `runtime =
 * "nodejs"`, the default, never `"edge"`) and must never be prerendered or cached: export
 * `dynamic = "force-dynamic"` next to it. Create the realtime instance in a module of its own and keep
 * one per process (in development, on `globalThis`, so a hot reload does not open another LISTEN
 * connection). With Next's `basePath` setting, `request.url` includes it: give the realtime instance the
 * full path (`/app/realtime`).
 *
 * @param realtime what `createRealtime` returned.
 * @throws TypeError when `realtime` is not a realtime instance, on an unknown option, or when
 *   `authenticate` is not a function.
 * @example
 * // app/realtime/[...path]/route.ts
 * import { createRouteHandlers } from "pgrealtime/next";
 * import { realtime } from "@/lib/realtime";
 * import { getSession } from "@/lib/session";
 *
 * export const runtime = "nodejs";
 * export const dynamic = "force-dynamic";
 * export const { GET } = createRouteHandlers(realtime, {
 *   authenticate: async (request) => (await getSession(request))?.userId ?? null,
 * });
 */
export function createRouteHandlers<Events extends EventMap>(
  realtime: Realtime<Events>,
  options: NextRouteHandlersOptions | null = {},
): NextRouteHandlers {
  const host = hostOf(realtime);
  refuseUnknownKeys(options ?? {}, ["authenticate"], "createRouteHandlers", "option");
  const own = options?.authenticate;
  if (own !== undefined && typeof own !== "function") {
    throw new TypeError("createRouteHandlers: authenticate must be a function (request) => userId | null");
  }
  const handle: NextRouteHandler = async (request) => {
    const authenticate = () => (own ? own(request) : (host.authenticate?.(request) ?? null));
    // No `server` argument: Next's second argument is the route's params, never a Bun server.
    return (await serveFetch(host, request, authenticate)) ?? new Response("Not found\n", NOT_FOUND);
  };
  return { GET: handle, HEAD: handle, POST: handle };
}
