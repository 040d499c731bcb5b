// Attacks on coalesced publishing (src/publish.ts): concurrent publish() calls share one INSERT, and
// each caller must still get its own event or its own error, whatever the database says about a row.
import pg from "pg";
import { describe, expect, it, onTestFinished } from "vitest";
import { createRealtime } from "../src/index.js";
import { databaseUrl, filePool, freshSchema } from "./support/database.js";
import { servedRealtime } from "./support/server.js";

const files = filePool();
const quiet = { debug() {}, info() {}, warn() {}, error() {} };

describe("coalesced publishing under attack", () => {
  it("attack: an event the app's trigger refuses (RAISE EXCEPTION, SQLSTATE P0001) fails alone, not its whole batch", async () => {
    // BROKEN (core, publish path): only SQLSTATE classes 22, 23 and 54 are retried one by one; a
    // trigger's RAISE is P0001, so every innocent event batched with the bad one is refused too.
    const { realtime, schema } = await servedRealtime();
    await files.pool.query(`CREATE FUNCTION "${schema}".refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN IF NEW.type = 'poison' THEN RAISE EXCEPTION 'no poison'; END IF; RETURN NEW; END $$`);
    await files.pool.query(`CREATE TRIGGER refuse_poison BEFORE INSERT ON "${schema}"."events"
FOR EACH ROW EXECUTE FUNCTION "${schema}".refuse_poison()`);
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) =>
        realtime.publishGlobal({ type: i === 10 ? "poison" : "fine", detail: { i } }),
      ),
    );
    const rejected = results.flatMap((result, i) => (result.status === "rejected" ? [i] : []));
    expect(rejected).toEqual([10]);
  });

  it("attack: a lone UTF-16 surrogate PostgreSQL's jsonb refuses fails its own publish only", async () => {
    const { realtime } = await servedRealtime();
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) =>
        realtime.publishGlobal({ type: "text", detail: { text: i === 4 ? "\ud800" : `ok ${i}` } }),
      ),
    );
    const statuses = results.map((result) => result.status);
    // Either refused before anything is written (a TypeError), or by the database for that row alone.
    expect(statuses.filter((status) => status === "rejected")).toHaveLength(1);
    expect(statuses[4]).toBe("rejected");
  });

  it("attack: the schema dropped under a burst: every caller gets MIGRATION_REQUIRED, the process goes on", async () => {
    const { realtime, schema } = await servedRealtime();
    await files.pool.query(`DROP SCHEMA "${schema}" CASCADE`);
    const results = await Promise.allSettled(
      Array.from({ length: 30 }, (_, i) => realtime.publishGlobal({ type: "gone", detail: { i } })),
    );
    expect(
      results.map((r) => (r.status === "rejected" ? (r.reason as { code?: string }).code : "stored")),
    ).toEqual(Array.from({ length: 30 }, () => "MIGRATION_REQUIRED"));
    await realtime.migrate();
    await expect(realtime.publishGlobal({ type: "back" })).resolves.toMatchObject({ type: "back" });
  });

  it("attack: a pool of one connection, a transaction holding it, and a burst of publishes: no deadlock", async () => {
    const pool = new pg.Pool({ connectionString: databaseUrl(), max: 1 });
    onTestFinished(() => pool.end());
    const realtime = createRealtime({ pool, schema: freshSchema("one"), logger: quiet });
    onTestFinished(() => realtime.close());
    await realtime.migrate();
    await realtime.ready();
    const client = await pool.connect();
    await client.query("BEGIN");
    // Queued behind the transaction's connection.
    const burst = Array.from({ length: 40 }, (_, i) =>
      realtime.publishGlobal({ type: "burst", detail: { i } }),
    );
    const inTransaction = await realtime.publishGlobal({ type: "in_tx" }, { client });
    await client.query("COMMIT");
    client.release();
    const published = await Promise.all(burst);
    const ids = [...published.map((e) => BigInt(e.id)), BigInt(inTransaction.id)];
    expect(new Set(ids).size).toBe(41);
    // Call order within the burst.
    const burstIds = published.map((e) => BigInt(e.id));
    expect([...burstIds].sort((a, b) => (a < b ? -1 : 1))).toEqual(burstIds);
  });

  it("attack: details near maxPayloadBytes batched with small ones are all stored whole, in call order", async () => {
    const { realtime, schema } = await servedRealtime({ maxPayloadBytes: 1024 * 1024 });
    const big = "x".repeat(1024 * 1024 - 20);
    const published = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        realtime.publishGlobal({ type: "mix", detail: i % 3 === 0 ? { big } : { i } }),
      ),
    );
    const ids = published.map((e) => BigInt(e.id));
    expect([...ids].sort((a, b) => (a < b ? -1 : 1))).toEqual(ids);
    const { rows } = await files.pool.query<{ id: string; n: number }>(
      `SELECT e.id::text, length(e.detail->>'big') AS n FROM "${schema}"."events" e ORDER BY e.id`,
    );
    expect(rows.map((row) => row.n)).toEqual(published.map((_, i) => (i % 3 === 0 ? big.length : null)));
  });
});
