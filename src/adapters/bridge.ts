// Node request ⇄ Fetch conversions, in one place: a Fetch `Request` for `authenticate(request)` and for
// the admin page, and the admin's Fetch `Response` written to a `ServerResponse`. The event stream
// never goes through here: it has its own Node writer (sinks/node.ts).
import type { IncomingMessage, ServerResponse } from "node:http";
import { Readable } from "node:stream";
import { drainedOrGone } from "../sinks/node.js";
import type { Logger } from "../types.js";

/**
 * A Fetch `Request` with the Node request's method, URL (as the client asked for it, before a mount
 * path was stripped) and headers. Given the `res` it is answered on, the request also carries its body
 * (or the form a body parser already consumed, such as Express's `urlencoded()`) and an abort signal
 * that fires when the client goes away.
 */
export function toRequest(req: IncomingMessage, res?: ServerResponse): Request {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    // HTTP/2 pseudo-headers (":path") are not valid Fetch header names.
    if (value === undefined || name.startsWith(":")) continue;
    headers.set(name, Array.isArray(value) ? value.join(", ") : value);
  }
  const { pathname, search } = requestUrl(req) ?? new URL("http://localhost/");
  const scheme = (req.socket as { encrypted?: boolean } | undefined)?.encrypted ? "https" : "http";
  let url: URL;
  try {
    url = new URL(`${scheme}://${req.headers.host ?? "localhost"}`);
  } catch {
    url = new URL(`${scheme}://localhost`);
  }
  // Only the path and query of the target: the host is the one the client connected to (its Host
  // header), never one named in the target (`//evil.example/…`, `http://evil.example/…`).
  url.pathname = pathname;
  url.search = search;
  const method = req.method ?? "GET";
  if (!res) return new Request(url, { method, headers });
  const gone = new AbortController();
  res.once("close", () => gone.abort());
  const init: RequestInit & { duplex?: "half" } = { method, headers, signal: gone.signal };
  if (method !== "GET" && method !== "HEAD") {
    init.body = consumedForm(req) ?? (Readable.toWeb(req) as ReadableStream<Uint8Array>);
    // Required by Node's fetch for a streamed body.
    init.duplex = "half";
  }
  return new Request(url, init);
}

/**
 * The path and query the client asked for (Express's `originalUrl`, before a mount path was stripped),
 * on a placeholder origin. An origin-form target is a path only, as the frameworks route it:
 * `//evil/realtime/events` is the path `//evil/realtime/events`, never the host `evil` and the path
 * `/realtime/events`, and a backslash stays a character of the path (`%5C`), never a separator. An
 * absolute-form target (`GET http://host/path`, which HTTP/1.1 servers must accept) gives its own path,
 * and is `null` when it is no valid http(s) URL (`GET http://a:99999/`); `OPTIONS *` is the path `/*`.
 */
export function requestUrl(req: IncomingMessage): URL | null {
  let target = (req as { originalUrl?: string }).originalUrl ?? req.url ?? "/";
  if (/^[a-z][a-z0-9+.-]*:/i.test(target)) {
    const absolute = URL.parse(target);
    if (absolute?.protocol !== "http:" && absolute?.protocol !== "https:") return null;
    target = `${absolute.pathname}${absolute.search}`;
  }
  // The fragment is no part of the request, as for Node's own url.parse (Express, Koa).
  const hash = target.indexOf("#");
  if (hash !== -1) target = target.slice(0, hash);
  const query = target.indexOf("?");
  const url = new URL("http://localhost");
  // Set, never parsed: a parsed `//…` or `/\…` would name a host.
  url.pathname = (query === -1 ? target : target.slice(0, query)).replaceAll("\\", "%5C");
  url.search = query === -1 ? "" : target.slice(query);
  return url;
}

/** The form a body parser already read into `req.body`, encoded again; `undefined` if none did. */
function consumedForm(req: IncomingMessage): string | undefined {
  const parsed = (req as { body?: unknown }).body;
  if (!req.readableEnded || typeof parsed !== "object" || parsed === null) return undefined;
  const form = new URLSearchParams();
  for (const [name, value] of Object.entries(parsed)) {
    for (const item of Array.isArray(value) ? value : [value]) form.append(name, String(item));
  }
  return form.toString();
}

/**
 * Writes a Fetch `Response` to `res`: status and headers, then the body chunk by chunk as the handler
 * produces it (a live stream is never buffered), waiting for `drain` when the socket is full. The
 * client going away cancels the body, which ends whatever produces it.
 */
export async function writeResponse(response: Response, res: ServerResponse, logger: Logger): Promise<void> {
  if (res.headersSent) return;
  const reader = response.body?.getReader();
  const cancel = () => void reader?.cancel().catch(() => {});
  res.once("close", cancel);
  try {
    const headers: Record<string, string | string[]> = {};
    for (const [name, value] of response.headers) if (name !== "set-cookie") headers[name] = value;
    const cookies = response.headers.getSetCookie();
    if (cookies.length > 0) headers["set-cookie"] = cookies;
    res.writeHead(response.status, headers);
    for (;;) {
      const chunk = await reader?.read();
      if (!chunk || chunk.done || res.destroyed) break;
      if (!res.write(chunk.value)) await drainedOrGone(res);
    }
    res.end();
  } catch (error) {
    logger.error({ err: error }, "pgrealtime: an admin response failed while it was written");
    res.destroy();
  } finally {
    res.off("close", cancel);
  }
}
