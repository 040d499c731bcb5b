// The event page: one stored event, its detail and private data pretty-printed, its delivery log, and
// the "replay" button.
import { isEventId } from "../event.js";
import type { ActivityEntry, StoredEvent } from "../types.js";
import { html, type SafeHtml } from "./html.js";
import { type AdminContext, errorPage, eventUrl, page, tokenField, userText, when } from "./layout.js";

/** `GET {basePath}/admin/events/<id>`. */
export async function eventPage(context: AdminContext, id: string): Promise<Response> {
  if (!isEventId(id)) return errorPage(context, 400, `Not an event id: ${JSON.stringify(id)}`);
  const { events } = context.realtime;
  const [event, activity] = await Promise.all([events.get(id), events.activity(id)]);
  if (!event) return errorPage(context, 404, `There is no event ${id} (never stored, or pruned).`);
  const body = html`<h1>Event ${event.id}</h1>
${facts(context, event)}
<form method="post" action="${context.prefix}/replay">
${tokenField(context)}
<input type="hidden" name="id" value="${event.id}">
<button type="submit">Replay</button>
</form>
<h2>Detail</h2>
<pre class="json" id="detail">${JSON.stringify(event.detail, null, 2)}</pre>
<h2>Private data</h2>
${event.privateData === null ? html`<p class="empty">None.</p>` : html`<pre class="json" id="private-data">${JSON.stringify(event.privateData, null, 2)}</pre>`}
<h2>Activity</h2>
${activityTable(context, activity)}`;
  return page(context, `Event ${event.id}`, body);
}

function facts(context: AdminContext, event: StoredEvent): SafeHtml {
  const replayOf = event.replayOf
    ? html`<a href="${eventUrl(context, event.replayOf)}">${event.replayOf}</a>`
    : html`<span class="empty">— (an original)</span>`;
  return html`<dl class="facts">
<dt>type</dt><dd id="type">${event.type}</dd>
<dt>scope</dt><dd>${event.scope}</dd>
<dt>user</dt><dd id="user">${userText(event.userId)}</dd>
<dt>status</dt><dd class="status-${event.status}">${event.status}</dd>
<dt>created (UTC)</dt><dd>${when(event.createdAt)}</dd>
<dt>replay of</dt><dd>${replayOf}</dd>
</dl>`;
}

function activityTable(context: AdminContext, activity: ActivityEntry[]): SafeHtml {
  if (activity.length === 0) {
    return html`<p class="empty">No delivery recorded yet (entries are written about a second after a delivery).</p>`;
  }
  const rows = activity.map(
    (entry) => html`<tr>
<td>${when(entry.at)}</td>
<td>${entry.kind}</td>
<td>${entry.process ?? ""}</td>
<td>${entry.kind === "sent" ? (entry.userId ?? "anonymous") : (entry.userId ?? "")}</td>
<td class="number">${entry.kind === "replayed" ? "" : entry.connections}</td>
<td>${entry.resumed ? "yes" : ""}</td>
<td>${entry.replayId ? html`<a href="${eventUrl(context, entry.replayId)}">${entry.replayId}</a>` : ""}</td>
</tr>`,
  );
  return html`<table class="activity">
<thead><tr><th>at (UTC)</th><th>kind</th><th>process</th><th>user</th><th class="number">connections</th><th>resumed</th><th>replay</th></tr></thead>
<tbody>
${rows}
</tbody>
</table>`;
}
