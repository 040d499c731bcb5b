import { adminFor, dispatch, type Host, type Responder } from "../dispatch.js";
import { createWebResponder } from "../sinks/web.js";
import type { Logger } from "../types.js";

/**
 * The Fetch API handler of a realtime instance (`realtime.handler`): our routes, the admin page once
 * mounted, else `404`. `server` is what the runtime passes as the fetch handler's second argument
 * (Bun's `Server`); see {@link liftIdleTimeout}.
 */
export function createFetchHandler(host: Host): (request: Request, server?: unknown) => Promise<Response> {
  return async (request, server) => {
    const url = new URL(request.url);
    const admin = adminFor(host, url.pathname);
    if (admin) return admin.handle(request);
    const { responder, response } = createWebResponder(request.signal);
    const ours = dispatch(
      host,
      { method: request.method, url, header: (name) => request.headers.get(name) },
      liftIdleTimeout(responder, request, server, host.logger),
      () => host.authenticate?.(request) ?? null,
    );
    if (!ours)
      return new Response("Not found\n", {
        status: 404,
        headers: { "Content-Type": "text/plain; charset=utf-8" },
      });
    return response;
  };
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
