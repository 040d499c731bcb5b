// Every value from the database, and every value echoed from the request, is HTML-escaped: a user id,
// a detail or private data holding markup shows as text, never as markup.
import { describe, expect, it } from "vitest";
import { servedAdmin, staffSession } from "./support/admin.js";
import { openStream } from "./support/sse.js";

const XSS = "<img src=x onerror=alert(1)>";
const ESCAPED = "&lt;img src=x onerror=alert(1)&gt;";
/** Breaks out of a double-quoted attribute if quotes are not escaped. */
const QUOTED = `"><img src=x onerror=alert(2)>`;

function expectEscaped(body: string): void {
  // The text " onerror=" remains, as text: only a raw "<" could make it an attribute of an element.
  expect(body).not.toContain("<img");
  expect(body).toContain(ESCAPED);
}

describe("escaping", () => {
  it("detail, private data, keys and user id on the event page; user id in the list and its activity", async () => {
    const { admin, realtime, url } = await servedAdmin();
    const session = await staffSession(admin);
    // The user's stream receives it, so the activity log holds the user id too.
    const stream = await openStream(`${url}/realtime/events?user=${encodeURIComponent(XSS)}`);
    const event = await realtime.publish({
      userId: XSS,
      type: "xss.probe",
      detail: { text: XSS, [XSS]: [XSS, { quoted: QUOTED }] },
      privateData: { note: XSS },
    });
    await stream.next("message");
    await expect
      .poll(async () => (await realtime.events.activity(event.id)).some((entry) => entry.kind === "sent"), {
        timeout: 10_000,
      })
      .toBe(true);

    const page = await (await session.get(`/events/${event.id}`)).text();
    expectEscaped(page);
    expect(page).not.toContain(QUOTED);
    // Pretty-printed JSON, then escaped: quotes of the JSON itself become entities.
    expect(page).toContain(`&quot;text&quot;: &quot;${ESCAPED}&quot;`);
    expect(page).toContain(`&quot;note&quot;: &quot;${ESCAPED}&quot;`);
    expect(page).toMatch(/<h2>Activity<\/h2>[\s\S]*<td>&lt;img src=x onerror=alert\(1\)&gt;<\/td>/);

    const list = await (await session.get(`/?user=${encodeURIComponent(XSS)}`)).text();
    expectEscaped(list);
    expect(list).toContain(`<td>${ESCAPED}</td>`);
    expect(list).toContain(`name="user" value="${ESCAPED}"`);
  });

  it("type, scope, status, dates and ids echoed from the query, and the messages about them", async () => {
    const { admin } = await servedAdmin();
    const session = await staffSession(admin);
    for (const field of ["type", "scope", "status", "from", "to", "before"]) {
      const response = await session.get(`/?${field}=${encodeURIComponent(XSS)}`);
      const body = await response.text();
      expect([field, response.status]).toEqual([field, 400]);
      expect(body).toContain('class="error"');
      expect(body).not.toContain("<img");
    }
    const quoted = await (await session.get(`/?type=${encodeURIComponent(QUOTED)}`)).text();
    expect(quoted).not.toContain(QUOTED);
    expect(quoted).toContain("&quot;&gt;&lt;img");
    for (const path of [`/events/${encodeURIComponent(XSS)}`, `/events?id=${encodeURIComponent(XSS)}`]) {
      const body = await (await session.get(path)).text();
      expect([path, body.includes("<img")]).toEqual([path, false]);
    }
  });
});
