// The one route table. The Fetch handler and every framework adapter describe their request and how to
// answer it, then call `dispatch`; statuses, refusals and headers are decided here and written by the
// transport's own writer (sinks/), never by an adapter.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import type { Sink } from "./connection.js";
import { RealtimeError } from "./errors.js";
import { isEventId, refuseUnknownKeys } from "./event.js";
import type { Refusal, Streams } from "./stream.js";
import type { Logger, UserId } from "./types.js";

/** The response headers of an event stream; `Connection` is added by writers on HTTP/1.x only. */
export const STREAM_HEADERS: Readonly<Record<string, string>> = {
  "Content-Type": "text/event-stream; charset=utf-8",
  "Cache-Control": "no-cache, no-transform",
  "X-Accel-Buffering": "no",
};

/** A request as the route table sees it, whatever carried it. */
export interface HttpRequest {
  method: string;
  url: URL;
  header(name: string): string | null | undefined;
}

/** How a transport answers one request. */
export interface Responder {
  /** A complete answer with a text body (refusals, client.js); `body: null` sends none. */
  send(status: number, headers: Record<string, string>, body: string | null): void;
  /** Writes `200` with {@link STREAM_HEADERS}; returns where the stream's bytes go. */
  start(): Sink;
  /** Runs `fn` once when the client goes away (at once if it already has); a later call replaces it. */
  onGone(fn: () => void): void;
}

/** What the route table needs from a realtime instance. */
export interface Host {
  basePath: string;
  /** The `storage` option: the admin page reads the events table. */
  storage: boolean;
  logger: Logger;
  streams: Streams;
  /** The instance's own `authenticate(request: Request)`, if any. */
  authenticate: ((request: Request) => UserId | null | Promise<UserId | null>) | undefined;
  /** The instance's `heartbeatMs` and `retryMs`, for streams served outside `streams` (the admin's live feed). */
  heartbeatMs: number;
  retryMs: number;
  /** The admin page once `createAdmin` mounted it; every adapter serves `{basePath}/admin…` through it. */
  admin?: AdminMount;
}

/** What `createAdmin` registers on the host. */
export interface AdminMount {
  /** Answers a request to `{basePath}/admin` or below. */
  handle(request: Request): Promise<Response>;
  /** Ends the admin's open streams (`realtime.close()`). */
  close(): void;
}

/** The admin page of the host when `pathname` is `{basePath}/admin` or below, else `undefined`. */
export function adminFor(host: Host, pathname: string): AdminMount | undefined {
  const prefix = `${host.basePath}/admin`;
  const ours = pathname === prefix || pathname.startsWith(`${prefix}/`);
  return ours ? host.admin : undefined;
}

/** Which endpoint a path names, or `null` when it is not one of ours. */
export function matchRoute(basePath: string, pathname: string): "events" | "client" | null {
  if (!pathname.startsWith(basePath)) return null;
  const rest = pathname.slice(basePath.length);
  if (rest === "/events") return "events";
  if (rest === "/client.js") return "client";
  return null;
}

const TEXT = { "Content-Type": "text/plain; charset=utf-8" };

/**
 * Answers one request to `{basePath}/…`. Returns false, answering nothing, when the path is not ours
 * (a Fetch handler then answers 404, middleware calls `next()`).
 */
export function dispatch(
  host: Host,
  request: HttpRequest,
  responder: Responder,
  authenticate: () => UserId | null | undefined | Promise<UserId | null | undefined>,
): boolean {
  const route = matchRoute(host.basePath, request.url.pathname);
  if (!route) return false;
  const head = request.method === "HEAD";
  if (request.method !== "GET" && !head) {
    responder.send(405, { ...TEXT, Allow: "GET, HEAD" }, "Method not allowed\n");
    return true;
  }
  if (route === "client") {
    const { status, headers, body } = clientScriptResponse(host.logger, request.header("if-none-match"));
    responder.send(status, headers, head || status === 304 ? null : body);
    return true;
  }
  void host.streams.serve({
    authenticate,
    lastEventId: lastEventIdOf(request.header("last-event-id"), request.url),
    headOnly: head,
    refuse: (refusal: Refusal) =>
      responder.send(refusal.status, { ...TEXT, ...refusal.headers }, refusal.message),
    start: () => responder.start(),
    onGone: (fn) => responder.onGone(fn),
  });
  return true;
}

/**
 * The cursor a client resumes from: the `Last-Event-ID` header (the browser's own reconnect) or the
 * `lastEventId` query parameter (the client's reconnect, a page's starting cursor); `null` for none.
 * Validated later, by the replay; an empty value counts as none.
 */
export function lastEventIdOf(header: string | null | undefined, url: URL): string | null {
  const value = header ?? url.searchParams.get("lastEventId");
  return value ? value.trim() || null : null;
}

// src/dispatch.ts and dist/dispatch.js are both one folder below the package root, so one relative URL
// finds the bundle from the sources (tests) and from the build (installed package).
const CLIENT_BUNDLE_URL = new URL("../dist/client/pgrealtime.global.js", import.meta.url);
let clientScript: { body: string; etag: string } | undefined;

/**
 * The browser client bundle and its ETag, read once.
 *
 * @throws RealtimeError `CLIENT_SCRIPT_MISSING` when the package was not built.
 */
function loadClientScript(): { body: string; etag: string } {
  if (!clientScript) {
    let body: string;
    try {
      body = readFileSync(CLIENT_BUNDLE_URL, "utf8");
    } catch (error) {
      throw new RealtimeError(
        "CLIENT_SCRIPT_MISSING",
        `pgrealtime: the browser client ${CLIENT_BUNDLE_URL.pathname} is missing; run \`npm run build\``,
        { cause: error },
      );
    }
    const etag = `"${createHash("sha256").update(body).digest("base64url").slice(0, 27)}"`;
    clientScript = { body, etag };
  }
  return clientScript;
}

/** `GET {basePath}/client.js`: status, headers and body (empty for a `304`). */
function clientScriptResponse(
  logger: Logger,
  ifNoneMatch: string | null | undefined,
): { status: number; headers: Record<string, string>; body: string } {
  let script: { body: string; etag: string };
  try {
    script = loadClientScript();
  } catch (error) {
    logger.error({ err: error }, (error as Error).message);
    return { status: 500, headers: TEXT, body: "Client missing\n" };
  }
  const headers = {
    "Content-Type": "text/javascript; charset=utf-8",
    "Cache-Control": "no-cache",
    ETag: script.etag,
  };
  if (ifNoneMatch === script.etag) return { status: 304, headers, body: "" };
  return { status: 200, headers, body: script.body };
}

/** The `<script>` tag that loads and connects the browser client (`realtime.scriptTag`). */
export function scriptTag(
  basePath: string,
  options: { lastEventId?: string | null; autoConnect?: boolean } | null | undefined,
): string {
  refuseUnknownKeys(options ?? {}, ["lastEventId", "autoConnect"], "scriptTag", "option");
  const autoConnect = options?.autoConnect;
  if (autoConnect !== undefined && typeof autoConnect !== "boolean") {
    throw new TypeError("scriptTag: autoConnect must be true or false");
  }
  let attributes = `src="${basePath}/client.js" defer`;
  const lastEventId = options?.lastEventId;
  if (lastEventId !== undefined && lastEventId !== null) {
    // Validated, so it needs no HTML escaping: digits only, and a bigint.
    if (!isEventId(lastEventId)) {
      throw new TypeError(`lastEventId must be a decimal event id, got ${JSON.stringify(lastEventId)}`);
    }
    attributes += ` data-last-event-id="${lastEventId}"`;
  }
  if (autoConnect === false) attributes += ` data-auto-connect="false"`;
  return `<script ${attributes}></script>`;
}

const HOST = Symbol.for("pgrealtime.host");

/** Attaches the HTTP internals to the public object, out of sight of users. */
export function attachHost<T extends object>(realtime: T, host: Host): T {
  Object.defineProperty(realtime, HOST, { value: host });
  return realtime;
}

/**
 * The HTTP internals of a realtime instance, for framework adapters.
 *
 * @throws TypeError when `realtime` is not what `createRealtime` returned.
 */
export function hostOf(realtime: unknown): Host {
  const host = (realtime as { [HOST]?: Host } | null)?.[HOST];
  if (!host) throw new TypeError("expected the object that createRealtime() returned");
  return host;
}
