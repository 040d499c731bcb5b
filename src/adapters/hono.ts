import type { Context, Env, MiddlewareHandler } from "hono";
import { hostOf } from "../dispatch.js";
import { refuseUnknownKeys } from "../event.js";
import type { Realtime } from "../realtime.js";
import type { EventMap, UserId } from "../types.js";
import { serveFetch } from "./fetch.js";

/** Options of {@link realtime} (alias {@link realtimeMiddleware}). */
export interface HonoRealtimeOptions<
  // biome-ignore lint/suspicious/noExplicitAny: Hono's own default: unannotated, `c.get` takes any key.
  E extends Env = any,
> {
  /**
   * Who the stream's request belongs to, read from Hono's own context: the user id, or `null` (or
   * `undefined`) for anonymous. Runs once per stream, after every middleware registered before this one,
   * so `c.get("user")` holds what your session or JWT middleware set (annotate `c: Context<AppEnv>` for
   * its type). May be async; a throw answers `500` (logged), never an anonymous stream. Default: the realtime instance's own `authenticate`, given
   * `c.req.raw`; without one, every stream is anonymous.
   */
  authenticate?: (c: Context<E>) => UserId | null | undefined | Promise<UserId | null | undefined>;
}

/**
 * A Hono 4 middleware serving `GET {basePath}/events` (the event stream), `GET {basePath}/client.js`
 * and, once `createAdmin` mounted it, `{basePath}/admin…`; every other path goes to `next()`, so your
 * own routes and Hono's 404 answer as usual. The stream is the Fetch `Response` that
 * `realtime.handler` returns too, so it runs wherever Hono does on a long-lived server (Node through
 * `@hono/node-server`, Bun, Deno). Under Bun, Hono's `c.env` is Bun's server, and each stream lifts its
 * own request's idle timeout as `realtime.handler(request, server)` does.
 *
 * Exported twice: as `realtime`, the name the SPEC gives it, and as `realtimeMiddleware`, for code that
 * already calls its realtime instance `realtime` (import one of them, or rename on import).
 *
 * @param instance what `createRealtime` returned.
 * @throws TypeError when `instance` is not a realtime instance, on an unknown option, or when
 *   `authenticate` is not a function.
 * @example
 * import { type Context, Hono } from "hono";
 * import { realtimeMiddleware } from "pgrealtime/hono";
 *
 * type AppEnv = { Variables: { user: { id: string } | null } };
 * const app = new Hono<AppEnv>();
 * app.use(async (c, next) => { c.set("user", await sessionUser(c)); await next(); });
 * app.use(realtimeMiddleware(realtime, { authenticate: (c: Context<AppEnv>) => c.get("user")?.id ?? null }));
 * app.get("/", (c) => c.html(page));
 */
export function realtime<
  Events extends EventMap,
  // biome-ignore lint/suspicious/noExplicitAny: as above; annotating `c: Context<AppEnv>` infers `E`.
  E extends Env = any,
>(instance: Realtime<Events>, options: HonoRealtimeOptions<E> | null = {}): MiddlewareHandler<E> {
  const host = hostOf(instance);
  refuseUnknownKeys(options ?? {}, ["authenticate"], "pgrealtime/hono realtime()", "option");
  const own = options?.authenticate;
  if (own !== undefined && typeof own !== "function") {
    throw new TypeError("pgrealtime/hono realtime(): authenticate must be a function (c) => userId | null");
  }
  return async (c, next) => {
    const request = c.req.raw;
    const authenticate = () => (own ? own(c) : (host.authenticate?.(request) ?? null));
    const response = await serveFetch(host, request, authenticate, c.env);
    if (response) return response;
    await next();
  };
}

/** {@link realtime} under a name that does not clash with a realtime instance called `realtime`. */
export const realtimeMiddleware = realtime;
