// Coalesced publishing: concurrent publish() calls of one process share one transaction (one commit),
// ids follow call order, and each caller gets its own event or its own error.
import { describe, expect, it } from "vitest";
import { filePool } from "./support/database.js";
import { servedRealtime } from "./support/server.js";
import { openStream } from "./support/sse.js";

const files = filePool();

async function txids(schema: string, ids: string[]): Promise<Map<string, string>> {
  const { rows } = await files.pool.query<{ id: string; txid: string }>(
    `SELECT id::text AS id, txid::text AS txid FROM "${schema}"."events" WHERE id = ANY($1::bigint[])`,
    [ids],
  );
  return new Map(rows.map((row) => [row.id, row.txid]));
}

describe("coalesced publishing", () => {
  it("writes concurrent publishes in few transactions, ids in call order, every event delivered once", async () => {
    const { realtime, server, schema, handled } = await servedRealtime();
    const stream = await openStream(`${server.url}/realtime/events`);
    const published = await Promise.all(
      Array.from({ length: 50 }, (_, i) => realtime.publishGlobal({ type: "burst", detail: { i } })),
    );
    const ids = published.map((event) => BigInt(event.id));
    expect([...ids].sort((a, b) => (a < b ? -1 : 1))).toEqual(ids);
    expect(published.map((event) => event.detail)).toEqual(Array.from({ length: 50 }, (_, i) => ({ i })));
    const transactions = new Set(
      (
        await txids(
          schema,
          published.map((e) => e.id),
        )
      ).values(),
    );
    // The first goes out alone; the rest queue behind it and go out together.
    expect(transactions.size).toBeLessThanOrEqual(3);
    await stream.until((c) => c.events.length === 50, "every event");
    expect(stream.events.map((e) => e.id)).toEqual(published.map((e) => e.id));
    expect(handled.map((e) => e.id)).toEqual(published.map((e) => e.id));
  });

  it("fails a bad row alone: the others of its batch are stored and delivered", async () => {
    const { realtime, server, schema } = await servedRealtime();
    // A rule of the app's own that one event breaks, which only the database can tell.
    await files.pool.query(
      `ALTER TABLE "${schema}"."events" ADD CONSTRAINT no_bad CHECK (NOT detail ? 'bad')`,
    );
    const stream = await openStream(`${server.url}/realtime/events`);
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) =>
        realtime.publishGlobal({ type: "mixed", detail: i === 5 ? { bad: true } : { i } }),
      ),
    );
    expect(results.map((r) => r.status)).toEqual(
      Array.from({ length: 10 }, (_, i) => (i === 5 ? "rejected" : "fulfilled")),
    );
    expect((results[5] as PromiseRejectedResult).reason).toMatchObject({ code: "23514" });
    await stream.until((c) => c.events.length === 9, "the nine good events");
    expect(stream.events.map((e) => e.detail)).toEqual(
      Array.from({ length: 10 }, (_, i) => ({ i })).filter((_, i) => i !== 5),
    );
  });

  it("keeps a publish with { client } in the caller's transaction, outside any batch", async () => {
    const { realtime, schema } = await servedRealtime();
    const client = await files.pool.connect();
    try {
      await client.query("BEGIN");
      const [inside, ...outside] = await Promise.all([
        realtime.publishGlobal({ type: "inside" }, { client }),
        ...Array.from({ length: 5 }, () => realtime.publishGlobal({ type: "outside" })),
      ]);
      await client.query("ROLLBACK");
      const stored = await txids(schema, [inside?.id as string, ...outside.map((e) => e.id)]);
      expect(stored.has(inside?.id as string)).toBe(false);
      expect(stored.size).toBe(5);
    } finally {
      client.release();
    }
  });

  it("close() waits for publishes already called", async () => {
    const { realtime } = await servedRealtime();
    const pending = Array.from({ length: 20 }, () => realtime.publishGlobal({ type: "late" }));
    await realtime.close();
    const results = await Promise.allSettled(pending);
    expect(results.every((r) => r.status === "fulfilled")).toBe(true);
  });
});
