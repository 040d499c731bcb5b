// C36: any role that can connect may NOTIFY any channel. A role with no privilege on the schema forges
// notifications on the schema's channel; nothing forged may reach a stream or a handler, and no real event
// may be suppressed, duplicated or reordered by them, live or on resume.
import { randomBytes, randomUUID } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import type { Realtime, RealtimeEvent, RealtimeOptions } from "../src/index.js";
import { databaseUrl, freshSchema } from "./support/database.js";
import { migratedRealtime, serveRealtime } from "./support/server.js";
import { openStream, type SseClient } from "./support/sse.js";
import { carried, cursorOf, wireProblems } from "./support/wire.js";

let db: pg.Pool;
beforeAll(() => {
  db = new pg.Pool({ connectionString: databaseUrl(), max: 2 });
});
afterAll(() => db.end());

/** A LOGIN role with no privilege on anything of ours, connected; dropped when the test ends. */
async function forgerFor(schema: string): Promise<(payload: object) => Promise<void>> {
  const role = `forger_${randomBytes(4).toString("hex")}`;
  await db.query(`CREATE ROLE ${role} LOGIN PASSWORD 'forger'`);
  const url = new URL(databaseUrl());
  url.username = role;
  url.password = "forger";
  const client = new pg.Client({ connectionString: url.toString() });
  client.on("error", () => {});
  await client.connect();
  onTestFinished(async () => {
    await client.end().catch(() => {});
    await db.query(`DROP ROLE IF EXISTS ${role}`);
  });
  const { rows } = await db.query("SELECT has_schema_privilege($1, $2, 'USAGE') AS usage", [role, schema]);
  expect(rows[0].usage).toBe(false);
  // The channel as src/store.ts derives it from the schema.
  return async (payload) => {
    await client.query("SELECT pg_notify($1, $2)", [`${schema}_events`, JSON.stringify(payload)]);
  };
}

/** A notification shaped like the library's own: the whole event, marked so it shows if it leaks. */
function forgedEvent(id: string, type: string, scope: string, userId: string | null = null) {
  return { id, type, scope, userId, detail: { forged: true }, createdAt: new Date().toISOString() };
}

/** The payloads every variant forges: user, global, reserved types, CR/LF and SSE fields in the id. */
function commonForgeries(duplicateOf: string) {
  return [
    forgedEvent(String(900_000 + Math.floor(Math.random() * 1000)), "forged_user", "user", "42"),
    forgedEvent(randomUUID(), "forged_global", "global"),
    forgedEvent(randomUUID(), "connected", "global"),
    forgedEvent(randomUUID(), "reset", "global"),
    forgedEvent("1\nevent: reset\nretry: 1", "forged_crlf", "global"),
    forgedEvent("2\r\nid: 999\r\ndata: {}\r\n\r\n", "forged_crlf", "user", "42"),
    forgedEvent(duplicateOf, "forged_duplicate", "user", "42"),
  ];
}

/** What a stream of `user` may see of `events`, in order. */
const visibleTo = (user: string | null, events: RealtimeEvent[]) =>
  events.filter((e) => e.scope === "global" || (e.scope === "user" && user !== null && e.userId === user));

/**
 * The stream carried exactly `expected` (by data.id, with their real type and detail), in order, and
 * nothing else: no forged byte, no extra field, frame or `retry:`.
 */
function expectOnly(stream: SseClient, expected: RealtimeEvent[], what: string): void {
  expect(wireProblems(stream), what).toEqual([]);
  expect(stream.chunks.map((c) => c.text).join(""), what).not.toContain("forged");
  expect(
    stream.events.map(({ id, type, detail }) => ({ id, type, detail })),
    what,
  ).toEqual(expected.map(({ id, type, detail }) => ({ id, type, detail })));
}

/** Waits until every stream and the handler have the last real event each may see. */
async function delivered(
  streams: Array<[SseClient, string | null]>,
  handled: RealtimeEvent[],
  real: RealtimeEvent[],
  stage: string,
): Promise<void> {
  for (const [stream, user] of streams) {
    const last = visibleTo(user, real).at(-1);
    if (last) await stream.until((s) => carried(s, last.id), `real event ${last.id} ${stage}`, 15_000);
  }
  const last = real.at(-1) as RealtimeEvent;
  await expect
    .poll(() => handled.some((e) => e.id === last.id), { timeout: 15_000, message: `handler, ${stage}` })
    .toBe(true);
}

async function killListener(schema: string): Promise<number> {
  const { rows } = await db.query(
    `SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity
     WHERE datname = current_database() AND application_name LIKE 'pgrealtime listener%'
       AND strpos(application_name, $1) > 0`,
    [schema],
  );
  return rows.filter((r) => r.killed).length;
}

/** Two instances of one schema (a publisher and a served receiver), as two processes would be. */
async function pair(options: Partial<RealtimeOptions>) {
  const schema = freshSchema();
  const { realtime: publisher } = await migratedRealtime({ ...options, schema });
  const { realtime: receiver } = await migratedRealtime({ ...options, schema });
  onTestFinished(() => Promise.all([publisher.close(), receiver.close()]).then(() => {}));
  const server = await serveRealtime(receiver);
  onTestFinished(() => server.close());
  const handled: RealtimeEvent[] = [];
  receiver.subscribe((event) => handled.push(event));
  await receiver.ready();
  const url = (user: string | null) => `${server.url}/realtime/events${user === null ? "" : `?user=${user}`}`;
  return { schema, publisher, receiver, handled, url };
}

/** Publishes one real event of each scope. */
async function publishReal(realtime: Realtime, n: number): Promise<RealtimeEvent[]> {
  return [
    await realtime.publish({ userId: 42, type: "real_user", detail: { n } }),
    await realtime.publishGlobal({ type: "real_global", detail: { n } }),
    await realtime.publishSystem({ type: "real_system", detail: { n } }),
  ];
}

describe("C36 forged notifications", () => {
  it("C36 with storage: nothing forged reaches a stream or a handler; every real event arrives, live and on resume", {
    timeout: 40_000,
  }, async () => {
    const { schema, publisher, handled, url } = await pair({ heartbeatMs: 500 });
    const forge = await forgerFor(schema);
    const before = await publisher.currentEventId();
    const s42 = await openStream(url("42"));
    const anonymous = await openStream(url(null));
    const streams: Array<[SseClient, string | null]> = [
      [s42, "42"],
      [anonymous, null],
    ];
    const real = await publishReal(publisher, 1);
    for (const payload of commonForgeries((real[0] as RealtimeEvent).id)) await forge(payload);
    real.push(...(await publishReal(publisher, 2)));

    // The id the table hands out next, forged before its real event exists, whole and as an id-only hint.
    const { rows } = await db.query(
      "SELECT pg_sequence_last_value(pg_get_serial_sequence($1, 'id'))::text AS last",
      [`"${schema}"."events"`],
    );
    const next = String(BigInt(rows[0].last) + 1n);
    await forge(forgedEvent(next, "forged_next", "user", "42"));
    await forge({ id: next });
    const claimed = await publisher.publish({ userId: 42, type: "real_next", detail: { n: 3 } });
    expect(claimed.id).toBe(next);
    real.push(claimed, ...(await publishReal(publisher, 4)));
    await delivered(streams, handled, real, "after the forgeries");

    // Cursor-shaped garbage, each followed by a LISTEN drop: catch-up must neither stall nor skip.
    for (const bad of ["abc", "9223372036854775807"]) {
      await forge(forgedEvent(bad, "forged_cursor", "global"));
      await forge({ id: bad });
      expect(await killListener(schema)).toBeGreaterThan(0);
      real.push(...(await publishReal(publisher, 5)));
      await delivered(streams, handled, real, `published during the LISTEN drop after a forged id ${bad}`);
      real.push(...(await publishReal(publisher, 6)));
      await delivered(streams, handled, real, `published after the LISTEN drop after a forged id ${bad}`);
    }

    for (const [stream, user] of streams) expectOnly(stream, visibleTo(user, real), `live, user ${user}`);
    expect(handled.map(({ id, type, detail }) => ({ id, type, detail }))).toEqual(
      real.map(({ id, type, detail }) => ({ id, type, detail })),
    );

    const resumed = await openStream(url("42"), before);
    const fromMiddle = await openStream(url("42"), cursorOf(s42, claimed.id));
    const expected = visibleTo("42", real);
    await resumed.until((s) => s.events.length >= expected.length, "the replay", 15_000);
    expectOnly(resumed, expected, "resumed from the start");
    const rest = expected.slice(expected.findIndex((e) => e.id === claimed.id) + 1);
    await fromMiddle.until((s) => s.events.length >= rest.length, "the replay", 15_000);
    expectOnly(fromMiddle, rest, "resumed from the claimed id");
  });

  /** Storage off: forged payloads between real events, on a 42 and an anonymous stream. */
  async function forgedBetweenReal(options: Partial<RealtimeOptions>) {
    const { schema, publisher, handled, url } = await pair({ storage: false, ...options });
    const forge = await forgerFor(schema);
    const streams: Array<[SseClient, string | null]> = [
      [await openStream(url("42")), "42"],
      [await openStream(url(null)), null],
    ];
    const real = await publishReal(publisher, 1);
    for (const payload of commonForgeries((real[0] as RealtimeEvent).id)) await forge(payload);
    real.push(...(await publishReal(publisher, 2)));
    await delivered(streams, handled, real, "after the forgeries");
    return { streams, handled, real };
  }

  it("C36 without storage, with a shared secret: forged payloads are ignored, real ones arrive", async () => {
    const { streams, handled, real } = await forgedBetweenReal({ secret: randomBytes(32).toString("hex") });
    for (const [stream, user] of streams) expectOnly(stream, visibleTo(user, real), `user ${user}`);
    expect(handled.map((e) => e.id)).toEqual(real.map((e) => e.id));
  });

  it("C36 without storage and without a secret (documented trust): forged reserved types and CR/LF ids add no frame or field", async () => {
    const { streams, real } = await forgedBetweenReal({});
    for (const [stream, user] of streams) {
      expect(wireProblems(stream), `user ${user}`).toEqual([]);
      for (const event of visibleTo(user, real)) expect(carried(stream, event.id)).toBe(true);
    }
  });
});
