import type { IncomingMessage, ServerResponse } from "node:http";
import { type AdminMount, adminFor, dispatch, hostOf } from "../dispatch.js";
import { refuseUnknownKeys } from "../event.js";
import type { Realtime } from "../realtime.js";
import { createNodeResponder } from "../sinks/node.js";
import type { EventMap, Logger, UserId } from "../types.js";
import { requestUrl, toRequest, writeResponse } from "./bridge.js";

const TEXT = { "Content-Type": "text/plain; charset=utf-8" };

/** Options of {@link toNodeHandler}. */
export interface NodeHandlerOptions {
  /**
   * Who the stream's request belongs to, read from the Node request (cookie, session, header):
   * the user id, or `null` for anonymous. Default: the realtime instance's own `authenticate`, given a
   * Fetch `Request` with the same URL and headers; without one, every stream is anonymous.
   */
  authenticate?: (req: IncomingMessage) => UserId | null | undefined | Promise<UserId | null | undefined>;
}

/**
 * Serves `GET {basePath}/events` and `GET {basePath}/client.js` to `node:http` and Express, writing
 * straight to the response (no Fetch bridge, which would buffer the stream), and `{basePath}/admin…`
 * once `createAdmin` mounted the admin page on the instance.
 * As a request listener, other paths get `404`; as Express or Koa middleware, other paths go to `next()`.
 *
 * The returned promise resolves once a request it took is done (its response ended or the client gone),
 * or with what `next()` returned: Koa awaits it, so Koa answers (its 404) only requests we passed on and
 * never writes into our stream, and a rejection from Koa's downstream middleware reaches Koa's error
 * handling instead of becoming an unhandled rejection. Node and Express ignore it; it never rejects there.
 *
 * @throws TypeError on an unknown option or a non-function `authenticate`.
 * @example
 * http.createServer(toNodeHandler(realtime, { authenticate: (req) => sessionUser(req) })).listen(3000);
 * app.use(toNodeHandler(realtime, { authenticate: (req) => req.session?.userId ?? null }));
 * koa.use((ctx, next) => handler(ctx.req, ctx.res, next)); // returns the promise: Koa waits for it
 */
export function toNodeHandler<Events extends EventMap>(
  realtime: Realtime<Events>,
  options: NodeHandlerOptions | null = {},
): (req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => unknown) => Promise<void> {
  const host = hostOf(realtime);
  refuseUnknownKeys(options ?? {}, ["authenticate"], "toNodeHandler", "option");
  const own = options?.authenticate;
  if (own !== undefined && typeof own !== "function") {
    throw new TypeError("toNodeHandler: authenticate must be a function (req) => userId | null");
  }
  const authenticate = (req: IncomingMessage) =>
    own ? own(req) : (host.authenticate?.(toRequest(req)) ?? null);

  return (req, res, next) => {
    // Express strips a mount path from req.url; originalUrl keeps the path the client asked for.
    const url = requestUrl(req);
    if (!url) {
      // A request target no URL parser takes (`GET http://a:99999/`): nothing of ours, and no throw,
      // which would end a node:http process.
      res.writeHead(400, TEXT).end("Bad request\n");
      return done(res);
    }
    const admin = adminFor(host, url.pathname);
    if (admin) {
      serveAdmin(admin, req, res, host.logger);
      return done(res);
    }
    const request = {
      method: req.method ?? "GET",
      url,
      header: (name: string) => {
        const value = req.headers[name];
        return Array.isArray(value) ? value.join(", ") : value;
      },
    };
    if (dispatch(host, request, createNodeResponder(req, res), () => authenticate(req))) return done(res);
    if (next) return Promise.resolve(next()).then(() => {});
    if (!res.headersSent) res.writeHead(404, TEXT).end("Not found\n");
    return Promise.resolve();
  };
}

/**
 * Resolves when `res` is over: ended and flushed, or its connection closed. A stream is answered
 * asynchronously (after `authenticate`), so a framework that answers once our middleware's promise
 * settles (Koa's respond(): its 404, or "OK" appended to our stream) must not run before this.
 */
function done(res: ServerResponse): Promise<void> {
  if (res.writableFinished || res.destroyed) return Promise.resolve();
  return new Promise((resolve) => res.once("close", () => resolve()));
}

/**
 * Hands one request to the admin. Fetch refuses to build a `Request` for TRACE and TRACK, which the
 * admin would refuse anyway: they get `405` here rather than a throw out of the request listener.
 */
function serveAdmin(admin: AdminMount, req: IncomingMessage, res: ServerResponse, logger: Logger): void {
  let request: Request;
  try {
    request = toRequest(req, res);
  } catch {
    res.writeHead(405, { ...TEXT, Allow: "GET, POST" }).end("Method not allowed\n");
    return;
  }
  admin
    .handle(request)
    .then((response) => writeResponse(response, res, logger))
    .catch((error: unknown) => {
      logger.error({ err: error }, "pgrealtime: an admin request failed");
      if (!res.headersSent) res.writeHead(500, TEXT).end("Internal error\n");
      else res.destroy();
    });
}
