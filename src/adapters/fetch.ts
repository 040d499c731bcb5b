import { adminFor, dispatch, type Host, matchRoute, type Responder } from "../dispatch.js";
import { createWebResponder } from "../sinks/web.js";
import type { Logger, UserId } from "../types.js";

/**
 * The Fetch API handler of a realtime instance (`realtime.handler`): our routes, the admin page once
 * mounted, else `404`. `server` is what the runtime passes as the fetch handler's second argument
 * (Bun's `Server`); see {@link liftIdleTimeout}.
 */
export function createFetchHandler(host: Host): (request: Request, server?: unknown) => Promise<Response> {
  return async (request, server) =>
    (await serveFetch(host, request, () => host.authenticate?.(request) ?? null, server)) ??
    new Response("Not found\n", { status: 404, headers: { "Content-Type": "text/plain; charset=utf-8" } });
}

/**
 * Answers a Fetch `Request` to `{basePath}/events`, `/client.js` or (once mounted) `/admin…`, or
 * resolves to `null`, answering nothing, for any other path: `realtime.handler` then answers `404`,
 * the Hono middleware calls `next()`. `authenticate` is the adapter's, run once a stream is asked for;
 * `server` as in {@link createFetchHandler}.
 */
export async function serveFetch(
  host: Host,
  request: Request,
  authenticate: () => UserId | null | undefined | Promise<UserId | null | undefined>,
  server?: unknown,
): Promise<Response | null> {
  const url = new URL(request.url);
  const admin = adminFor(host, url.pathname);
  if (admin) return admin.handle(request);
  // Matched before a responder exists, so a path passed on leaves no listener on the request's signal.
  if (!matchRoute(host.basePath, url.pathname)) return null;
  const { responder, response } = createWebResponder(request.signal);
  dispatch(
    host,
    { method: request.method, url, header: (name) => request.headers.get(name) },
    liftIdleTimeout(responder, request, server, host.logger),
    authenticate,
  );
  return response;
}

/**
 * Bun.serve passes its server as the second argument and cuts a response that sends nothing for its
 * `idleTimeout` (10 s by default), sooner than `heartbeatMs` (15 s). An event stream is idle by design
 * between heartbeats, so when one starts its request's own timeout is lifted (`server.timeout(request, 0)`,
 * Bun's per-request control); refusals and client.js keep the server's. Any other second argument (Deno's
 * handler info, a worker's env, none) has no `timeout` function and is left alone.
 */
function liftIdleTimeout(responder: Responder, request: Request, server: unknown, logger: Logger): Responder {
  const timeout = (server as { timeout?: unknown } | null | undefined)?.timeout;
  if (typeof timeout !== "function") return responder;
  return {
    ...responder,
    start() {
      try {
        timeout.call(server, request, 0);
      } catch (error) {
        logger.warn(
          { err: error },
          "pgrealtime: the server's per-request idle timeout could not be lifted; heartbeatMs must stay below it",
        );
      }
      return responder.start();
    },
  };
}
