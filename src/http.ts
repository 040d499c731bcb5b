import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { RealtimeError } from "./errors.js";
import { normalizeUserId } from "./publish.js";
import { createWebSink } from "./sinks/web.js";
import type { Sink } from "./sse.js";
import type { Logger, UserId } from "./types.js";

/** What the HTTP layer (the Fetch handler and the framework adapters) needs from a realtime instance. */
export interface StreamHost {
  basePath: string;
  retryMs: number;
  allowAnonymous: boolean;
  logger: Logger;
  authenticate: ((request: Request) => UserId | null | Promise<UserId | null>) | undefined;
  /** Waits (bounded) until the LISTEN connection is up; false when it is not, or the instance closed. */
  waitForListener(): Promise<boolean>;
  /** A refusal when this process (`503`) or this user (`429`) has as many streams as allowed. */
  capacity(userId: string | null): Refusal | null;
  /**
   * Registers a stream and writes its prelude, then replays from `lastEventId` when there is one;
   * returns the cleanup, which runs once however often called.
   */
  open(userId: string | null, sink: Sink, lastEventId: string | null): () => void;
}

/** The response headers of an event stream; `Connection` is added by adapters on HTTP/1.x only. */
export const STREAM_HEADERS: Readonly<Record<string, string>> = {
  "Content-Type": "text/event-stream; charset=utf-8",
  "Cache-Control": "no-cache, no-transform",
  "X-Accel-Buffering": "no",
};

/** Which endpoint a path names, or `null` when it is not one of ours. */
export function matchRoute(basePath: string, pathname: string): "events" | "client" | null {
  if (!pathname.startsWith(basePath)) return null;
  const rest = pathname.slice(basePath.length);
  if (rest === "/events") return "events";
  if (rest === "/client.js") return "client";
  return null;
}

/** A refusal before the stream starts: status, plain-text message and extra headers. */
export interface Refusal {
  status: number;
  message: string;
  headers?: Record<string, string>;
}

/**
 * Decides who a stream belongs to: the user id as a decimal string, `null` for anonymous, or a refusal
 * (`401` anonymous when not allowed, `500` when authentication throws or returns a bad id, `503` while
 * the LISTEN connection is down).
 */
export async function admit(
  host: StreamHost,
  authenticate: () => UserId | null | undefined | Promise<UserId | null | undefined>,
): Promise<{ userId: string | null } | Refusal> {
  let userId: string | null;
  try {
    const raw = await authenticate();
    userId = raw === null || raw === undefined ? null : normalizeUserId(raw, "authenticate's result");
  } catch (error) {
    host.logger.error({ err: error }, "pgrealtime: authenticate failed; stream refused");
    return { status: 500, message: "Authentication failed\n" };
  }
  if (userId === null && !host.allowAnonymous) {
    return { status: 401, message: "Sign in to receive events\n" };
  }
  const retryAfter = { "Retry-After": String(Math.max(1, Math.ceil(host.retryMs / 1000))) };
  if (!(await host.waitForListener())) {
    return {
      status: 503,
      message: "Realtime events are unavailable: not connected to PostgreSQL\n",
      headers: retryAfter,
    };
  }
  const full = host.capacity(userId);
  if (full) return { ...full, headers: retryAfter };
  return { userId };
}

/**
 * The id a client resumes from: the `Last-Event-ID` header (the browser's own reconnect) or the
 * `lastEventId` query parameter (the client's reconnect, a page's starting cursor); `null` for none.
 * Validated later, by the replay; an empty value counts as none.
 */
export function lastEventIdOf(header: string | null | undefined, url: URL): string | null {
  const value = header ?? url.searchParams.get("lastEventId");
  return value ? value.trim() || null : null;
}

// src/http.ts and dist/http.js are both one folder below the package root, so one relative URL
// finds the bundle from the sources (tests) and from the build (installed package).
const CLIENT_BUNDLE_URL = new URL("../dist/client/pgrealtime.global.js", import.meta.url);
let clientScript: { body: string; etag: string } | undefined;

/**
 * The browser client bundle and its ETag, read once.
 *
 * @throws RealtimeError `CLIENT_SCRIPT_MISSING` when the package was not built.
 */
export function loadClientScript(): { body: string; etag: string } {
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
export function clientScriptResponse(
  logger: Logger,
  ifNoneMatch: string | null | undefined,
): { status: number; headers: Record<string, string>; body: string } {
  let script: { body: string; etag: string };
  try {
    script = loadClientScript();
  } catch (error) {
    logger.error({ err: error }, (error as Error).message);
    return {
      status: 500,
      headers: { "Content-Type": "text/plain; charset=utf-8" },
      body: "Client missing\n",
    };
  }
  const headers = {
    "Content-Type": "text/javascript; charset=utf-8",
    "Cache-Control": "no-cache",
    ETag: script.etag,
  };
  if (ifNoneMatch === script.etag) return { status: 304, headers, body: "" };
  return { status: 200, headers, body: script.body };
}

/** Builds the Fetch API handler of a realtime instance. */
export function createFetchHandler(host: StreamHost): (request: Request) => Promise<Response> {
  return async (request) => {
    const url = new URL(request.url);
    const route = matchRoute(host.basePath, url.pathname);
    if (!route) return new Response("Not found\n", { status: 404 });
    if (request.method !== "GET" && request.method !== "HEAD") {
      return new Response("Method not allowed\n", { status: 405, headers: { Allow: "GET, HEAD" } });
    }
    if (route === "client") {
      const { status, headers, body } = clientScriptResponse(
        host.logger,
        request.headers.get("if-none-match"),
      );
      return new Response(request.method === "HEAD" || status === 304 ? null : body, { status, headers });
    }
    const admitted = await admit(host, () => host.authenticate?.(request) ?? null);
    if ("status" in admitted) {
      return new Response(admitted.message, {
        status: admitted.status,
        headers: { "Content-Type": "text/plain; charset=utf-8", ...admitted.headers },
      });
    }
    if (request.method === "HEAD") return new Response(null, { status: 200, headers: STREAM_HEADERS });
    const { stream, sink, onClose } = createWebSink(request.signal);
    onClose(host.open(admitted.userId, sink, lastEventIdOf(request.headers.get("last-event-id"), url)));
    return new Response(stream, { status: 200, headers: STREAM_HEADERS });
  };
}

const STREAM_HOST = Symbol.for("pgrealtime.streamHost");

/** Attaches the HTTP internals to the public object, out of sight of users. */
export function attachStreamHost<T extends object>(realtime: T, host: StreamHost): T {
  Object.defineProperty(realtime, STREAM_HOST, { value: host });
  return realtime;
}

/**
 * The HTTP internals of a realtime instance, for framework adapters.
 *
 * @throws TypeError when `realtime` is not what `createRealtime` returned.
 */
export function streamHostOf(realtime: unknown): StreamHost {
  const host = (realtime as { [STREAM_HOST]?: StreamHost } | null)?.[STREAM_HOST];
  if (!host) throw new TypeError("expected the object that createRealtime() returned");
  return host;
}
