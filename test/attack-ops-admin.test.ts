// Attacks on the admin page over HTTP: cross-site replays in every shape a browser or script can send,
// and markup planted in every stored field, with SQL, where the library's own checks never ran.
import { describe, expect, it } from "vitest";
import { STAFF_COOKIE, servedAdmin, staffSession } from "./support/admin.js";
import { filePool } from "./support/database.js";

const files = filePool();
const PAYLOAD = `"><img src=x onerror=alert(1)><script>alert(2)</script>`;

async function replayCount(schema: string): Promise<number> {
  const { rows } = await files.pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM "${schema}"."events" WHERE replay_of IS NOT NULL`,
  );
  return rows[0]?.n ?? 0;
}

describe("admin under attack", () => {
  it("attack: replays without the cookie's token, with a tossed cookie, same-site, multipart or the token in the query are refused", async () => {
    const { realtime, schema, admin } = await servedAdmin();
    const event = await realtime.publishGlobal({ type: "target" });
    const session = await staffSession(admin);
    const form = (token: string) => new URLSearchParams({ id: event.id, csrf: token }).toString();
    const post = (headers: Record<string, string>, body: BodyInit, query = "") =>
      fetch(`${admin}/replay${query}`, { method: "POST", redirect: "manual", headers, body });
    const urlencoded = { "content-type": "application/x-www-form-urlencoded" };
    const answers = [
      // A script with the staff cookie but no token cookie: neither Origin nor Sec-Fetch-Site.
      await post({ ...urlencoded, cookie: STAFF_COOKIE }, form(session.token)),
      // The token only in the query string.
      await post({ ...urlencoded, cookie: session.cookie }, `id=${event.id}`, `?csrf=${session.token}`),
      // A cookie tossed from a sibling subdomain (listed first), posted from there with a matching field.
      await post(
        {
          ...urlencoded,
          cookie: `pgrealtime-admin-csrf=${"A".repeat(43)}; ${session.cookie}`,
          origin: "http://evil.localhost",
        },
        form("A".repeat(43)),
      ),
      // Same-site is not same-origin.
      await post(
        { ...urlencoded, cookie: session.cookie, "sec-fetch-site": "same-site" },
        form(session.token),
      ),
      // Origin: null (a sandboxed frame).
      await post({ ...urlencoded, cookie: session.cookie, origin: "null" }, form(session.token)),
    ];
    const multipart = new FormData();
    multipart.set("id", event.id);
    multipart.set("csrf", session.token);
    const multi = await post({ cookie: session.cookie }, multipart);
    expect(answers.map((response) => response.status)).toEqual([403, 403, 403, 403, 403]);
    expect(multi.status).toBe(415);
    expect(await replayCount(schema)).toBe(0);
    // The page's own form still works.
    expect(
      (
        await session.replay([
          ["id", event.id],
          ["csrf", session.token],
        ])
      ).status,
    ).toBe(303);
    expect(await replayCount(schema)).toBe(1);
  });

  it("attack: markup written with SQL into user id, detail keys, private data, activity and the processes table is shown as text", async () => {
    const { schema, admin } = await servedAdmin();
    const { rows } = await files.pool.query<{ id: string }>(
      `INSERT INTO "${schema}"."events" (type, scope, user_id, detail, private_data)
       VALUES ('planted', 'user', $1, jsonb_build_object($1::text, $1::text), jsonb_build_object($1::text, $1::text))
       RETURNING id::text`,
      [PAYLOAD],
    );
    const id = rows[0]?.id as string;
    await files.pool.query(
      `INSERT INTO "${schema}"."activity" (event_id, kind, process, user_id, connections) VALUES ($1, 'sent', $2, $2, 1)`,
      [id, PAYLOAD],
    );
    await files.pool.query(
      `INSERT INTO "${schema}"."processes" (id, host, pid, started_at, expires_at, listener)
       VALUES ($1, $1, 1, now(), now() + interval '1 hour', $1)`,
      [PAYLOAD],
    );
    const session = await staffSession(admin);
    const pages = await Promise.all(
      [
        `/events/${id}`,
        "",
        "/overview",
        `?user=${encodeURIComponent(PAYLOAD)}&type=${encodeURIComponent(PAYLOAD)}`,
      ].map(async (path) => (await session.get(path)).text()),
    );
    for (const page of pages) {
      expect(page).not.toContain("<img src=x");
      expect(page).not.toContain("<script>alert");
      expect(page).not.toMatch(/"><img/);
    }
    // Shown, escaped, where it belongs.
    expect(pages[0]).toContain("&lt;img src=x onerror=alert(1)&gt;");
    expect(pages[2]).toContain("&lt;script&gt;alert(2)&lt;/script&gt;");
  });
});
