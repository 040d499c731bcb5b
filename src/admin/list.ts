// The list page: the filters as a GET form, one page of events newest first, "older" by keyset
// (`next` as `before`), "replay selected", and the live toggle.
import { isEventId } from "../event.js";
import type { EventFilters, EventStatus, Scope, StoredEvent } from "../types.js";
import { html, type SafeHtml } from "./html.js";
import {
  type AdminContext,
  errorPage,
  eventUrl,
  page,
  seeOther,
  tokenField,
  userText,
  when,
} from "./layout.js";

/** The query parameters of the list, as the form sends them. */
const FIELDS = ["type", "scope", "user", "status", "from", "to", "before"] as const;
type Field = (typeof FIELDS)[number];
type Values = Record<Field, string>;

const SCOPES: readonly Scope[] = ["user", "global", "system"];
const STATUSES: readonly EventStatus[] = ["new", "dispatched", "sent"];

/** `GET {basePath}/admin`. A filter the store refuses is shown above the form, with `400`. */
export async function listPage(context: AdminContext): Promise<Response> {
  const values = Object.fromEntries(
    FIELDS.map((field) => [field, context.url.searchParams.get(field)?.trim() ?? ""]),
  ) as Values;
  let events: StoredEvent[] = [];
  let next: string | null = null;
  let problem: string | null = null;
  try {
    ({ events, next } = await context.realtime.events.list(filtersOf(values)));
  } catch (error) {
    if (!(error instanceof TypeError || error instanceof RangeError)) throw error;
    problem = error.message;
  }
  const body = html`<h1>Events</h1>
${notice(context, problem)}
${filterForm(context, values)}
<form class="find" method="get" action="${context.prefix}/events">
<label>Event id <input name="id" inputmode="numeric" required></label> <button type="submit">Open</button>
</form>
${liveToggle(context, values)}
<form method="post" action="${context.prefix}/replay">
${tokenField(context)}
<input type="hidden" name="return" value="${queryOf(values, {})}">
<table class="events">
<thead><tr><th><span class="sr">Select</span></th><th>id</th><th>type</th><th>scope</th><th>user</th><th>status</th><th>created (UTC)</th><th>replay of</th></tr></thead>
<tbody id="events">
${events.map((event) => row(context, event))}
</tbody>
</table>
${events.length === 0 ? html`<p class="empty">No events.</p>` : null}
<p><button type="submit">Replay selected</button></p>
</form>
${pages(context, values, next)}`;
  return page(context, "Events", body, { status: problem ? 400 : 200, live: true });
}

/** `GET {basePath}/admin/events?id=…` (the search box): on to that event's page. */
export function findEvent(context: AdminContext): Response {
  const id = context.url.searchParams.get("id")?.trim() ?? "";
  if (!isEventId(id)) return errorPage(context, 400, `Not an event id: ${JSON.stringify(id)}`);
  return seeOther(eventUrl(context, id));
}

/**
 * The form's values as `realtime.events.list` filters; empty fields are no filter. Dates are UTC.
 *
 * @throws TypeError for a date that is not `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM[:SS]`.
 */
function filtersOf(values: Values): EventFilters {
  const filters: EventFilters = {};
  if (values.type) filters.type = values.type;
  if (values.scope) filters.scope = values.scope as Scope;
  if (values.user) filters.userId = values.user;
  if (values.status) filters.status = values.status as EventStatus;
  if (values.before) filters.before = values.before;
  if (values.from) filters.from = dateOf(values.from, "from");
  if (values.to) filters.to = dateOf(values.to, "to");
  return filters;
}

function dateOf(value: string, name: string): Date {
  const match = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2})?)?$/.exec(value);
  const date = match ? new Date(`${value}${match[1] ? "" : "T00:00"}Z`) : null;
  if (!date || Number.isNaN(date.getTime())) {
    throw new TypeError(
      `${name}: expected a UTC date YYYY-MM-DD or YYYY-MM-DDTHH:MM, got ${JSON.stringify(value)}`,
    );
  }
  return date;
}

/** The list's query string with `changes` applied, empty values left out (`""` when nothing is left). */
function queryOf(values: Values, changes: Partial<Values>): string {
  const query = new URLSearchParams();
  for (const field of FIELDS) {
    const value = changes[field] ?? values[field];
    if (value) query.set(field, value);
  }
  const text = query.toString();
  return text ? `?${text}` : "";
}

function notice(context: AdminContext, problem: string | null): SafeHtml | null {
  if (problem) return html`<p class="error">${problem}</p>`;
  const replayed = (context.url.searchParams.get("replayed") ?? "").split(",").filter(isEventId);
  if (replayed.length === 0) return null;
  const links = replayed.map(
    (id, i) => html`${i > 0 ? ", " : ""}<a href="${eventUrl(context, id)}">#${id}</a>`,
  );
  return html`<p class="notice">Replayed ${replayed.length} event${replayed.length > 1 ? "s" : ""} as ${links}.</p>`;
}

function filterForm(context: AdminContext, values: Values): SafeHtml {
  const options = (selected: string, choices: readonly string[]) => [
    html`<option value="">any</option>`,
    choices.map((choice) => html`<option${choice === selected ? " selected" : ""}>${choice}</option>`),
  ];
  return html`<form class="filters" method="get" action="${context.prefix}">
<label>type <input name="type" value="${values.type}"></label>
<label>scope <select name="scope">${options(values.scope, SCOPES)}</select></label>
<label>user <input name="user" value="${values.user}"></label>
<label>status <select name="status">${options(values.status, STATUSES)}</select></label>
<label>from <input type="datetime-local" name="from" value="${values.from}"></label>
<label>to <input type="datetime-local" name="to" value="${values.to}"></label>
<button type="submit">Filter</button> <a href="${context.prefix}">clear</a>
</form>`;
}

/**
 * The live toggle, on the newest page only; live rows follow the type, scope and user filters, so it is
 * left out where a new event could not belong (a page of older events, a status, an end date).
 */
function liveToggle(context: AdminContext, values: Values): SafeHtml | null {
  if (values.before || values.status || values.to) return null;
  return html`<p class="live"><label><input type="checkbox" id="live" data-url="${context.prefix}/live" data-events="${context.prefix}/events/" data-type="${values.type}" data-scope="${values.scope}" data-user="${values.user}"> live: show new events as they happen</label> <span id="live-state"></span></p>`;
}

function row(context: AdminContext, event: StoredEvent): SafeHtml {
  return html`<tr>
<td><input type="checkbox" name="id" value="${event.id}" aria-label="select ${event.id}"></td>
<td><a href="${eventUrl(context, event.id)}">${event.id}</a></td>
<td>${event.type}</td>
<td>${event.scope}</td>
<td>${userText(event.userId)}</td>
<td class="status-${event.status}">${event.status}</td>
<td>${when(event.createdAt)}</td>
<td>${event.replayOf ? html`<a href="${eventUrl(context, event.replayOf)}">${event.replayOf}</a>` : ""}</td>
</tr>`;
}

function pages(context: AdminContext, values: Values, next: string | null): SafeHtml {
  const newest = values.before
    ? html`<a href="${context.prefix}${queryOf(values, { before: "" })}">newest</a>`
    : null;
  const older = next
    ? html`<a rel="next" href="${context.prefix}${queryOf(values, { before: next })}">older</a>`
    : null;
  return html`<nav class="pages">${newest} ${older}</nav>`;
}
