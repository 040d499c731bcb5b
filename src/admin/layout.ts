// The frame every admin page shares, and the small formatting helpers of the views.
import type { Realtime } from "../api.js";
import type { Logger } from "../types.js";
import { CSRF_FIELD } from "./csrf.js";
import { html, raw, type SafeHtml } from "./html.js";

/** What a route handler knows about the request it answers. */
export interface AdminContext {
  realtime: Realtime;
  request: Request;
  url: URL;
  /** `{basePath}`, where the client script lives. */
  basePath: string;
  /** `{basePath}/admin`, the root of every admin URL. */
  prefix: string;
  /** The double-submit token this response's forms carry. */
  token: string;
  logger: Logger;
}

/** A complete admin page; `live` also loads the realtime client (the list's live mode). */
export function page(
  context: AdminContext,
  title: string,
  body: SafeHtml,
  options: { status?: number; live?: boolean } = {},
): Response {
  const { prefix } = context;
  const client = options.live ? raw(context.realtime.scriptTag({ autoConnect: false })) : null;
  const markup = html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · pgrealtime admin</title>
<link rel="stylesheet" href="${prefix}/admin.css">
${client}
<script src="${prefix}/admin.js" defer></script>
</head>
<body>
<header>
<a class="brand" href="${prefix}">pgrealtime</a>
<nav><a href="${prefix}">Events</a> <a href="${prefix}/overview">Overview</a></nav>
</header>
<main>
${body}
</main>
</body>
</html>
`;
  return new Response(markup.value, {
    status: options.status ?? 200,
    headers: { "Content-Type": "text/html; charset=utf-8" },
  });
}

/** A page that only says what went wrong (`400`, `404`, `500`). */
export function errorPage(context: AdminContext, status: number, message: string): Response {
  return page(context, `Error ${status}`, html`<h1>Error ${status}</h1><p class="error">${message}</p>`, {
    status,
  });
}

/** `303 See Other`: after a POST, the browser GETs `location`, so a reload never repeats the POST. */
export function seeOther(location: string): Response {
  return new Response(null, { status: 303, headers: { Location: location } });
}

/** The hidden field with the double-submit token; goes in every POST form. */
export function tokenField(context: AdminContext): SafeHtml {
  return html`<input type="hidden" name="${CSRF_FIELD}" value="${context.token}">`;
}

/** The URL of one event's page. */
export function eventUrl(context: AdminContext, id: string): string {
  return `${context.prefix}/events/${encodeURIComponent(id)}`;
}

/** A timestamp as UTC to the millisecond, `2024-05-01 10:00:00.123`; `""` for none. */
export function when(date: Date | null | undefined): string {
  return date ? date.toISOString().replace("T", " ").replace("Z", "") : "";
}

/** A user id, or `—` when the event has none. */
export function userText(userId: string | null): string {
  return userId ?? "—";
}
