// The Fastify 5 plugin: routes registered the Fastify way (so `prefix`, hooks and @fastify/cors apply),
// then each request hijacked and answered by the shared dispatch through the Node writer, with the
// headers Fastify's hooks set on `reply` carried over to the raw response.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { type AdminMount, adminFor, dispatch, type Host, hostOf, matchRoute } from "../dispatch.js";
import { refuseUnknownKeys } from "../event.js";
import type { Realtime } from "../realtime.js";
import { createNodeResponder } from "../sinks/node.js";
import type { EventMap, UserId } from "../types.js";
import { toRequest, writeResponse } from "./bridge.js";

const TEXT = { "Content-Type": "text/plain; charset=utf-8" };

/** Options of {@link realtimePlugin}, passed as `app.register(realtimePlugin, options)`. */
export interface RealtimePluginOptions {
  /**
   * What `createRealtime` returned (of any `Events` map: only the parts every instance shares are
   * named here, and the instance is checked at register). Required.
   */
  realtime: Pick<Realtime<EventMap>, "handler" | "close">;
  /**
   * Who the stream's request belongs to, read from Fastify's own request (a decorated `request.user`,
   * a session, a header): the user id, or `null` for anonymous; sync or async. Default: the realtime
   * instance's own `authenticate`, given a Fetch `Request` with the same URL and headers.
   */
  authenticate?: (request: FastifyRequest) => UserId | null | undefined | Promise<UserId | null | undefined>;
  /** Fastify's own register option: the routes are served at `{prefix}{basePath}/…`. Default: none. */
  prefix?: string;
}

// Fastify hands its own register options (`prefix`, `logLevel`, `logSerializers`) to the plugin too.
const KNOWN = ["realtime", "authenticate", "prefix", "logLevel", "logSerializers"];

/**
 * A Fastify 5 plugin serving `{basePath}/events` (the stream), `{basePath}/client.js` and, once
 * `createAdmin` mounted it, `{basePath}/admin…`, under the register `prefix` if one is given. Headers set
 * by `onRequest`/`preHandler` hooks and by `@fastify/cors` (`reply.header`) are sent with every answer,
 * the stream included. Each request is hijacked (`reply.hijack()`), so Fastify's `onSend` and
 * `onResponse` hooks do not run for these routes. `app.close()` ends the streams this plugin serves;
 * `realtime.close()` ends every stream.
 *
 * With a `prefix`, `realtime.scriptTag()` still points at `{basePath}`: write the tag as
 * `<script src="{prefix}{basePath}/client.js" defer>` (the client finds the stream beside its own URL).
 * The admin page's links and form cookie start at `{basePath}` too: with the admin, register without a
 * prefix and put it in `basePath` (`"/api/realtime"`).
 *
 * @throws TypeError (at register) when `realtime` is missing or not what `createRealtime` returned, on
 * an unknown option, or a non-function `authenticate`.
 * @example
 * import Fastify from "fastify";
 * import { realtimePlugin } from "pgrealtime/fastify";
 *
 * const app = Fastify();
 * await app.register(realtimePlugin, { realtime, authenticate: (request) => request.session?.userId ?? null });
 * await app.listen({ port: 3000 });
 */
export async function realtimePlugin(
  fastify: FastifyInstance,
  options: RealtimePluginOptions,
): Promise<void> {
  refuseUnknownKeys(options ?? {}, KNOWN, "realtimePlugin", "option");
  if (!options?.realtime) throw new TypeError("realtimePlugin: the realtime option is required");
  const host = hostOf(options.realtime);
  const own = options.authenticate;
  if (own !== undefined && typeof own !== "function") {
    throw new TypeError("realtimePlugin: authenticate must be a function (request) => userId | null");
  }
  const authenticate = (request: FastifyRequest) =>
    own ? own(request) : (host.authenticate?.(toRequest(request.raw)) ?? null);
  const open = new Set<ServerResponse>();
  // Fastify waits for open connections before app.close() resolves; a stream never ends by itself.
  fastify.addHook("preClose", async () => {
    for (const res of open) res.end();
  });
  // Leave every body unread for the admin's forms (urlencoded, which Fastify would refuse with 415).
  fastify.removeAllContentTypeParsers();
  fastify.addContentTypeParser("*", (_request, _payload, done) => done(null));

  // Counted in segments, not characters: a prefix parameter (`/t/:tenant`) matches names of any length.
  const prefixSegments = fastify.prefix.split("/").filter(Boolean).length;
  const handler = (request: FastifyRequest, reply: FastifyReply) => {
    const [rawPath = "", query = ""] = (request.raw.url ?? "/").split(/\?(.*)/s);
    // Set as a path, never parsed from the target: `//host/…` must not become a host.
    const url = new URL("http://localhost");
    url.pathname = withoutPrefix(rawPath, prefixSegments);
    url.search = query;
    const admin = adminFor(host, url.pathname);
    if (!admin && !matchRoute(host.basePath, url.pathname)) return reply.callNotFound();
    reply.hijack();
    const { raw: req } = request;
    const res = reply.raw;
    for (const [name, value] of Object.entries(reply.getHeaders())) {
      if (value !== undefined) res.setHeader(name, value as string | string[]);
    }
    open.add(res);
    res.once("close", () => open.delete(res));
    if (admin) return serveAdmin(admin, req, res, url, host);
    const header = (name: string) => {
      const value = req.headers[name];
      return Array.isArray(value) ? value.join(", ") : value;
    };
    const described = { method: req.method ?? "GET", url, header };
    dispatch(host, described, createNodeResponder(req, res), () => authenticate(request));
  };
  const base = host.basePath;
  for (const path of [`${base}/events`, `${base}/client.js`, `${base}/admin`, `${base}/admin/*`]) {
    fastify.all(path, handler);
  }
}

/**
 * The path below the register prefix: `rawPath` without its first `segments` segments. A path Fastify
 * routed with extra slashes (`ignoreDuplicateSlashes`) keeps them, so it matches none of our routes.
 */
function withoutPrefix(rawPath: string, segments: number): string {
  return `/${rawPath
    .split("/")
    .slice(segments + 1)
    .join("/")}`;
}

/** One admin request, with the URL as the admin knows it (no `prefix`). */
function serveAdmin(
  admin: AdminMount,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  host: Host,
): void {
  let request: Request;
  try {
    const full = toRequest(req, res);
    request = new Request(new URL(`${url.pathname}${url.search}`, full.url), full);
  } catch {
    // Fetch refuses TRACE and TRACK, which the admin would refuse anyway.
    res.writeHead(405, { ...TEXT, Allow: "GET, POST" }).end("Method not allowed\n");
    return;
  }
  admin
    .handle(request)
    .then((response) => writeResponse(response, res, host.logger))
    .catch((error: unknown) => {
      host.logger.error({ err: error }, "pgrealtime: an admin request failed");
      if (!res.headersSent) res.writeHead(500, TEXT).end("Internal error\n");
      else res.destroy();
    });
}
