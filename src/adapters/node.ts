import type { IncomingMessage, ServerResponse } from "node:http";
import {
  admit,
  clientScriptResponse,
  lastEventIdOf,
  matchRoute,
  STREAM_HEADERS,
  streamHostOf,
} from "../http.js";
import type { Realtime } from "../realtime.js";
import { createNodeSink } from "../sinks/node.js";
import type { EventMap, UserId } from "../types.js";

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
 * straight to the response (no Fetch bridge, which would buffer the stream).
 * As a request listener, other paths get `404`; as Express middleware, other paths go to `next()`.
 *
 * @example
 * http.createServer(toNodeHandler(realtime, { authenticate: (req) => sessionUser(req) })).listen(3000);
 * app.use(toNodeHandler(realtime, { authenticate: (req) => req.session?.userId ?? null }));
 */
export function toNodeHandler<Events extends EventMap>(
  realtime: Realtime<Events>,
  options: NodeHandlerOptions | null = {},
): (req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void) => void {
  const host = streamHostOf(realtime);
  for (const key of Object.keys(options ?? {})) {
    if (key !== "authenticate")
      throw new TypeError(`toNodeHandler: unknown option "${key}"; the option is authenticate`);
  }
  const own = options?.authenticate;
  if (own !== undefined && typeof own !== "function") {
    throw new TypeError("toNodeHandler: authenticate must be a function (req) => userId | null");
  }
  const authenticate = (req: IncomingMessage) =>
    own ? own(req) : (host.authenticate?.(toRequest(req)) ?? null);

  return (req, res, next) => {
    // Express strips a mount path from req.url; originalUrl keeps the path the client asked for.
    const url = (req as { originalUrl?: string }).originalUrl ?? req.url ?? "/";
    const route = matchRoute(host.basePath, url.split("?", 1)[0] ?? "/");
    if (!route) {
      if (next) next();
      else res.writeHead(404, { "Content-Type": "text/plain; charset=utf-8" }).end("Not found\n");
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      res
        .writeHead(405, { Allow: "GET, HEAD", "Content-Type": "text/plain; charset=utf-8" })
        .end("Method not allowed\n");
      return;
    }
    if (route === "client") {
      const { status, headers, body } = clientScriptResponse(host.logger, req.headers["if-none-match"]);
      res.writeHead(status, headers).end(req.method === "HEAD" ? undefined : body);
      return;
    }
    let gone = false;
    res.once("close", () => {
      gone = true;
    });
    admit(host, () => authenticate(req)).then(
      (admitted) => {
        if (gone) return;
        if ("status" in admitted) {
          res
            .writeHead(admitted.status, { "Content-Type": "text/plain; charset=utf-8", ...admitted.headers })
            .end(admitted.message);
          return;
        }
        // Connection is a hop-by-hop header: HTTP/1.1 only, never HTTP/2.
        const headers =
          req.httpVersionMajor === 1 ? { ...STREAM_HEADERS, Connection: "keep-alive" } : STREAM_HEADERS;
        res.writeHead(200, headers);
        if (req.method === "HEAD") {
          res.end();
          return;
        }
        let release: (() => void) | undefined;
        const sink = createNodeSink(res, () => release?.());
        const lastEventId = lastEventIdOf(
          req.headers["last-event-id"] as string | undefined,
          new URL(url, "http://localhost"),
        );
        release = host.open(admitted.userId, sink, lastEventId);
      },
      (error: unknown) => {
        host.logger.error({ err: error }, "pgrealtime: could not open an event stream");
        if (!res.headersSent) res.writeHead(500).end();
      },
    );
  };
}

/** A Fetch `Request` with the Node request's URL and headers, for an `authenticate(request)` option. */
function toRequest(req: IncomingMessage): Request {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    // HTTP/2 pseudo-headers (":path") are not valid Fetch header names.
    if (value === undefined || name.startsWith(":")) continue;
    headers.set(name, Array.isArray(value) ? value.join(", ") : value);
  }
  let url: URL;
  try {
    url = new URL(req.url ?? "/", `http://${req.headers.host ?? "localhost"}`);
  } catch {
    url = new URL(req.url ?? "/", "http://localhost");
  }
  return new Request(url, { method: req.method, headers });
}
