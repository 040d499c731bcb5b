// What the admin's pages show, over real HTTP: the list's filters and keyset pages, search by id, the
// event page's facts and activity, the overview.
import { describe, expect, it } from "vitest";
import { servedAdmin, staffSession } from "./support/admin.js";
import { openStream } from "./support/sse.js";

/** The ids of the list's rows, in order. */
function rowIds(body: string): string[] {
  return [...body.matchAll(/<input type="checkbox" name="id" value="(\d+)"/g)].map((m) => m[1] ?? "");
}

describe("the list", () => {
  it("newest first, filtered by type, scope, user, status and dates, 50 a page with an older link", async () => {
    const { admin, realtime } = await servedAdmin();
    const session = await staffSession(admin);
    const pages: string[] = [];
    for (let n = 0; n < 55; n++)
      pages.push((await realtime.publishGlobal({ type: "paged", detail: { n } })).id);
    const mine = await realtime.publish({ userId: "ann", type: "private_note" });
    const system = await realtime.publishSystem({ type: "audit" });

    const first = await (await session.get("/?type=paged")).text();
    expect(rowIds(first)).toEqual(pages.slice(5).reverse());
    const older = /<a rel="next" href="([^"]+)">older<\/a>/.exec(first)?.[1]?.replaceAll("&amp;", "&") ?? "";
    expect(older).toMatch(/^\/realtime\/admin\?type=paged&before=\d+$/);
    const second = await (await session.get(older.slice("/realtime/admin".length))).text();
    expect(rowIds(second)).toEqual(pages.slice(0, 5).reverse());
    expect(second).not.toContain('rel="next"');
    expect(second).toContain(">newest</a>");
    // No live toggle on a page of older events: nothing new belongs there.
    expect(second).not.toContain('id="live"');
    expect(first).toContain('id="live"');

    expect(rowIds(await (await session.get("/?user=ann")).text())).toEqual([mine.id]);
    expect(rowIds(await (await session.get("/?scope=system")).text())).toEqual([system.id]);
    expect(rowIds(await (await session.get(`/?type=audit&status=new`)).text())).toEqual([system.id]);
    expect(rowIds(await (await session.get("/?type=paged&from=2999-01-01")).text())).toEqual([]);
    expect(rowIds(await (await session.get("/?type=audit&to=2999-01-01T00:00")).text())).toEqual([system.id]);
    // The form shows the filters it was sent with.
    const filtered = await (await session.get("/?type=paged&scope=global")).text();
    expect(filtered).toContain('name="type" value="paged"');
    expect(filtered).toContain("<option selected>global</option>");
  });

  it("search by id goes to the event's page; a malformed id is 400, an unknown one 404", async () => {
    const { admin, realtime } = await servedAdmin();
    const session = await staffSession(admin);
    const event = await realtime.publishGlobal({ type: "found" });
    const found = await session.get(`/events?id=${event.id}`);
    expect(found.status).toBe(303);
    expect(found.headers.get("location")).toBe(`/realtime/admin/events/${event.id}`);
    expect((await session.get("/events?id=12x")).status).toBe(400);
    expect((await session.get("/events/99999999")).status).toBe(404);
  });
});

describe("the event page and the overview", () => {
  it("the event's facts, its activity log once delivered, and the overview of the installation", async () => {
    const { admin, realtime, url } = await servedAdmin();
    const session = await staffSession(admin);
    const stream = await openStream(`${url}/realtime/events?user=bo`);
    const event = await realtime.publish({ userId: "bo", type: "delivered", detail: { n: 1 } });
    await stream.next("message");
    await expect
      .poll(async () => (await realtime.events.activity(event.id)).map((entry) => entry.kind).sort(), {
        timeout: 10_000,
      })
      .toEqual(["dispatched", "sent"]);

    const page = await (await session.get(`/events/${event.id}`)).text();
    expect(page).toContain('<dd id="type">delivered</dd>');
    expect(page).toContain('<dd id="user">bo</dd>');
    expect(page).toMatch(/<td>sent<\/td>\n<td>[^<]+<\/td>\n<td>bo<\/td>\n<td class="number">1<\/td>/);
    expect(page).toContain('<p class="empty">None.</p>');

    const overview = await (await session.get("/overview")).text();
    const status = await realtime.status();
    expect(status.processes.length).toBeGreaterThan(0);
    for (const process of status.processes) expect(overview).toContain(`<td>${process.id}</td>`);
    expect(overview).toContain('<dd id="queue">');
    expect(overview).toContain(`${status.migration.applied} of ${status.migration.latest}`);
    expect(overview).toContain(`<a href="/realtime/admin/events/${event.id}">${event.id}</a>`);
  });
});
