// events.list on 200,000 rows: every filter is answered by an index, newest first, with a LIMIT — no
// query scans the events table or counts it whole. The statements are the ones the library really
// sends (recorded from its pool), explained with their real values.
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRealtime, type EventFilters, type Realtime } from "../src/index.js";
import { databaseUrl, freshSchema } from "./support/database.js";

const ROWS = 200_000;

/** A real pg.Pool that remembers the statements it ran. */
class RecordingPool extends pg.Pool {
  readonly statements: Array<{ text: string; values: unknown[] }> = [];
  override query(...args: unknown[]): never {
    if (typeof args[0] === "string")
      this.statements.push({ text: args[0], values: (args[1] as unknown[]) ?? [] });
    return (super.query as (...a: unknown[]) => never)(...args);
  }
}

interface PlanNode {
  "Node Type": string;
  "Relation Name"?: string;
  Plans?: PlanNode[];
}

function nodes(plan: PlanNode): PlanNode[] {
  return [plan, ...(plan.Plans ?? []).flatMap(nodes)];
}

describe("events.list plans on 200,000 rows", () => {
  const schema = freshSchema("plans");
  const pool = new RecordingPool({ connectionString: databaseUrl() });
  let realtime: Realtime;
  let middle: string;
  beforeAll(async () => {
    realtime = createRealtime({ pool, schema });
    await realtime.migrate();
    await pool.query(`INSERT INTO "${schema}"."events" (type, scope, user_id, detail)
SELECT 't' || (i % 50), (ARRAY['user', 'global', 'system'])[i % 3 + 1], CASE WHEN i % 3 <> 1 THEN 'u' || (i % 1000) END,
  jsonb_build_object('i', i)
FROM generate_series(1, ${ROWS}) i`);
    await pool.query(`INSERT INTO "${schema}"."activity" (event_id, kind, connections)
SELECT id, 'sent', 1 FROM "${schema}"."events" WHERE id % 7 = 0`);
    await pool.query(`ANALYZE "${schema}"."events"; ANALYZE "${schema}"."activity"`);
    middle = String(ROWS / 2);
  }, 120_000);
  afterAll(async () => {
    await realtime.close();
    await pool.end();
  });

  const cases: Array<[string, () => EventFilters]> = [
    ["no filter", () => ({})],
    ["a type", () => ({ type: "t7" })],
    ["a scope", () => ({ scope: "system" })],
    ["a user", () => ({ userId: "u42" })],
    ["a status", () => ({ status: "sent" })],
    ["a time range", () => ({ from: new Date(Date.now() - 3_600_000), to: new Date(Date.now() + 60_000) })],
    ["the next page", () => ({ before: middle, limit: 100 })],
    ["a type and a user, after an id", () => ({ type: "t2", userId: "u2", after: "10" })],
  ];

  it.each(cases)("uses an index and a LIMIT for %s", async (_, filters) => {
    const from = pool.statements.length;
    const page = await realtime.events.list(filters());
    expect(page.events.length).toBeGreaterThan(0);
    const sent = pool.statements.slice(from);
    expect(sent).toHaveLength(1);
    const { text, values } = sent[0] as { text: string; values: unknown[] };
    const explained: pg.QueryResult = await pool.query(`EXPLAIN (FORMAT JSON) ${text}`, values);
    const plan = nodes((explained.rows[0]["QUERY PLAN"] as Array<{ Plan: PlanNode }>)[0]?.Plan as PlanNode);
    const onEvents = plan.filter((node) => node["Relation Name"] === "events");
    expect(onEvents.length).toBeGreaterThan(0);
    expect(onEvents.map((node) => node["Node Type"])).not.toContain("Seq Scan");
    expect(plan[0]?.["Node Type"]).toBe("Limit");
    expect(plan.map((node) => node["Node Type"])).not.toContain("Aggregate");
  });
});
