// The overview: the installation as the database sees it (`realtime.status()`: processes listening,
// the NOTIFY queue, migration, table) and this process's counters (`realtime.stats()`).
import type { ProcessInfo, RealtimeStats, RealtimeStatus, StoredEventSummary } from "../types.js";
import { html, type SafeHtml } from "./html.js";
import { type AdminContext, eventUrl, page, when } from "./layout.js";

/** `GET {basePath}/admin/overview`. */
export async function overviewPage(context: AdminContext): Promise<Response> {
  const status = await context.realtime.status();
  const stats = context.realtime.stats();
  const body = html`<h1>Overview</h1>
<h2>Processes listening</h2>
${processTable(status.processes)}
<h2>Database</h2>
${database(context, status)}
<h2>This process</h2>
${counters(stats)}`;
  return page(context, "Overview", body);
}

function processTable(processes: ProcessInfo[]): SafeHtml {
  if (processes.length === 0) return html`<p class="empty">None has recorded a heartbeat lately.</p>`;
  const rows = processes.map(
    (p) => html`<tr>
<td>${p.id}</td><td>${p.host}</td><td class="number">${p.pid}</td><td>${p.listener}</td>
<td class="number">${p.connections}</td><td class="number">${p.users}</td><td class="number">${p.anonymous}</td>
<td>${when(p.startedAt)}</td><td>${when(p.seenAt)}</td>
</tr>`,
  );
  return html`<table class="processes">
<thead><tr><th>process</th><th>host</th><th class="number">pid</th><th>listener</th><th class="number">connections</th><th class="number">users</th><th class="number">anonymous</th><th>started (UTC)</th><th>seen (UTC)</th></tr></thead>
<tbody>
${rows}
</tbody>
</table>`;
}

function database(context: AdminContext, status: RealtimeStatus): SafeHtml {
  const { migration, events } = status;
  const summary = (event: StoredEventSummary | null) =>
    event ? html`<a href="${eventUrl(context, event.id)}">${event.id}</a> at ${when(event.createdAt)}` : "—";
  return html`<dl class="facts">
<dt>NOTIFY queue in use</dt><dd id="queue">${percent(status.notificationQueueUsage)}</dd>
<dt>migration</dt><dd>${migration.applied} of ${migration.latest}${migration.applied < migration.latest ? html` <strong class="error">(run migrate)</strong>` : ""}</dd>
<dt>table</dt><dd>${status.schema}.${status.table}</dd>
<dt>events (estimate)</dt><dd>${events.estimatedCount.toLocaleString("en")}</dd>
<dt>size with indexes</dt><dd>${bytes(events.bytes)}</dd>
<dt>oldest</dt><dd>${summary(events.oldest)}</dd>
<dt>newest</dt><dd>${summary(events.newest)}</dd>
</dl>`;
}

function counters(stats: RealtimeStats): SafeHtml {
  const { connections, events, listener, replays, activity } = stats;
  return html`<dl class="facts">
<dt>connections</dt><dd>${connections.total} (${connections.users} users, ${connections.anonymous} anonymous, ${connections.topics} topics)</dd>
<dt>events</dt><dd>${events.received} received, ${events.sent} sent, ${events.dropped} dropped</dd>
<dt>listener</dt><dd>${listener.state}, ${listener.reconnects} reconnects${listener.lastReconnectAt ? `, last at ${when(listener.lastReconnectAt)}` : ""}</dd>
<dt>replays</dt><dd>${replays.running} running, ${replays.total} total, ${replays.resets} resets</dd>
<dt>activity</dt><dd>${activity.written} written, ${activity.dropped} dropped, ${activity.failed} failed batches</dd>
</dl>`;
}

function percent(fraction: number): string {
  return `${(fraction * 100).toFixed(fraction > 0 && fraction < 0.001 ? 4 : 1)} %`;
}

function bytes(count: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = count;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}
