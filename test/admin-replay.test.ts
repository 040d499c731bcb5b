// Replaying from the admin over real HTTP: what a cross-site request cannot do (Origin, Fetch Metadata,
// the double-submit token), and what the admin's own forms do (303 to a GET, the new events).
import { describe, expect, it } from "vitest";
import { STAFF_COOKIE, servedAdmin, staffSession } from "./support/admin.js";

describe("cross-site replays are refused with 403 and replay nothing", () => {
  it("Origin of another host, Sec-Fetch-Site other than same-origin, a missing or wrong token", async () => {
    const { admin, realtime, logger } = await servedAdmin();
    const session = await staffSession(admin);
    const event = await realtime.publishGlobal({ type: "target" });
    const before = await realtime.currentEventId();
    const forged = "A".repeat(43);
    const attempts: Array<[string, Array<[string, string]>, Record<string, string>]> = [
      ["Origin of another site", [["csrf", session.token]], { origin: "http://evil.test" }],
      ["Origin of another port", [["csrf", session.token]], { origin: "http://127.0.0.1:1" }],
      ["Origin null", [["csrf", session.token]], { origin: "null" }],
      ["Sec-Fetch-Site cross-site", [["csrf", session.token]], { "sec-fetch-site": "cross-site" }],
      ["Sec-Fetch-Site same-site", [["csrf", session.token]], { "sec-fetch-site": "same-site" }],
      ["Sec-Fetch-Site none", [["csrf", session.token]], { "sec-fetch-site": "none" }],
      ["no token field", [], {}],
      ["an empty token", [["csrf", ""]], {}],
      ["a wrong token", [["csrf", forged]], {}],
      ["a shorter token", [["csrf", session.token.slice(1)]], {}],
      ["a token without its cookie", [["csrf", session.token]], { cookie: STAFF_COOKIE }],
      [
        "a cookie and field both forged",
        [["csrf", forged]],
        { cookie: `${STAFF_COOKIE}; pgrealtime-admin-csrf=${"B".repeat(43)}` },
      ],
    ];
    for (const [what, fields, headers] of attempts) {
      const response = await session.replay([...fields, ["id", event.id]], headers);
      expect([what, response.status]).toEqual([what, 403]);
      expect(response.headers.get("location")).toBeNull();
      expect(response.headers.get("content-security-policy")).toContain("default-src 'none'");
    }
    expect(await realtime.currentEventId()).toBe(before);
    expect(logger.warns.length).toBeGreaterThanOrEqual(attempts.length);
  });

  it("a request without Origin or Sec-Fetch-Site (not a browser) still needs the token", async () => {
    const { admin, realtime } = await servedAdmin();
    const session = await staffSession(admin);
    const event = await realtime.publishGlobal({ type: "target" });
    const bare = (fields: Array<[string, string]>) =>
      fetch(`${admin}/replay`, {
        method: "POST",
        redirect: "manual",
        headers: { cookie: session.cookie, "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams(fields).toString(),
      });
    expect((await bare([["id", event.id]])).status).toBe(403);
    expect(
      (
        await bare([
          ["id", event.id],
          ["csrf", session.token],
        ])
      ).status,
    ).toBe(303);
  });

  it("only urlencoded forms, at most 64 KiB", async () => {
    const { admin, realtime } = await servedAdmin();
    const session = await staffSession(admin);
    const before = await realtime.currentEventId();
    const multipart = await fetch(`${admin}/replay`, {
      method: "POST",
      headers: { cookie: session.cookie, "sec-fetch-site": "same-origin" },
      body: (() => {
        const form = new FormData();
        form.set("csrf", session.token);
        form.set("id", before);
        return form;
      })(),
    });
    expect(multipart.status).toBe(415);
    const huge = await session.replay([
      ["csrf", session.token],
      ["id", "1".repeat(70_000)],
    ]);
    expect(huge.status).toBe(413);
    expect(await realtime.currentEventId()).toBe(before);
  });
});

describe("replays from the admin's own forms", () => {
  it("the event page's button: 303 to the new event's page, which names the original", async () => {
    const { admin, realtime } = await servedAdmin();
    const session = await staffSession(admin);
    const original = await realtime.publish({
      userId: 7,
      type: "invoice_paid",
      detail: { invoice: 12 },
      privateData: { card: "4242" },
    });
    const page = await (await session.get(`/events/${original.id}`)).text();
    // The page's form carries this session's token and the event's id.
    expect(page).toContain(`<input type="hidden" name="csrf" value="${session.token}">`);
    expect(page).toContain(`<input type="hidden" name="id" value="${original.id}">`);

    const response = await session.replay([
      ["csrf", session.token],
      ["id", original.id],
    ]);
    expect(response.status).toBe(303);
    const newId = (response.headers.get("location") ?? "").split("/").at(-1) ?? "";
    expect(response.headers.get("location")).toBe(`/realtime/admin/events/${newId}`);
    const copy = await realtime.events.get(newId);
    expect(copy).toMatchObject({
      type: "invoice_paid",
      userId: "7",
      detail: { invoice: 12 },
      replayOf: original.id,
    });
    const copyPage = await (await session.get(`/events/${newId}`)).text();
    expect(copyPage).toContain(`<a href="/realtime/admin/events/${original.id}">${original.id}</a>`);
  });

  it("replay selected: every checked id, then back to the list with its filters and a notice", async () => {
    const { admin, realtime } = await servedAdmin();
    const session = await staffSession(admin);
    const a = await realtime.publishGlobal({ type: "batch", detail: { n: 1 } });
    const b = await realtime.publishGlobal({ type: "batch", detail: { n: 2 } });
    const list = await (await session.get("/?type=batch")).text();
    expect(list).toContain('<input type="hidden" name="return" value="?type=batch">');
    expect(list).toContain(`<input type="checkbox" name="id" value="${a.id}"`);

    const response = await session.replay([
      ["csrf", session.token],
      ["return", "?type=batch"],
      ["id", a.id],
      ["id", b.id],
    ]);
    expect(response.status).toBe(303);
    const location = new URL(response.headers.get("location") ?? "", "http://x");
    expect(location.pathname).toBe("/realtime/admin");
    expect(location.searchParams.get("type")).toBe("batch");
    const ids = (location.searchParams.get("replayed") ?? "").split(",");
    expect(ids).toHaveLength(2);
    const copies = await Promise.all(ids.map((id) => realtime.events.get(id)));
    expect(copies.map((copy) => copy?.replayOf)).toEqual([a.id, b.id]);
    const after = await (
      await session.get(`${location.pathname.slice("/realtime/admin".length)}${location.search}`)
    ).text();
    expect(after).toContain("Replayed 2 events as");
  });

  it("nothing selected is 400, an unknown id 404 (none replayed), a malformed one 400", async () => {
    const { admin, realtime } = await servedAdmin();
    const session = await staffSession(admin);
    const event = await realtime.publishGlobal({ type: "kept" });
    const before = await realtime.currentEventId();
    const post = (ids: string[]) =>
      session.replay([["csrf", session.token], ...ids.map((id): [string, string] => ["id", id])]);
    expect((await post([])).status).toBe(400);
    expect((await post([event.id, "999999999"])).status).toBe(404);
    expect((await post(["abc"])).status).toBe(400);
    expect(await realtime.currentEventId()).toBe(before);
  });
});
