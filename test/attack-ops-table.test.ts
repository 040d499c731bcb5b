// Attacks on the table option: installations side by side must never see each other's events,
// commands, processes, activity or prunes.
import { describe, expect, it, onTestFinished } from "vitest";
import { createRealtime, type RealtimeEvent } from "../src/index.js";
import { databaseUrl, filePool, freshSchema } from "./support/database.js";
import { servedRealtime } from "./support/server.js";
import { openStream } from "./support/sse.js";

const files = filePool();
const quiet = { debug() {}, info() {}, warn() {}, error() {} };

describe("two installations", () => {
  it("attack: disconnectUser, processes, activity and prune of one table leave the other alone", async () => {
    const schema = freshSchema("twins");
    const main = await servedRealtime({ schema });
    const other = await servedRealtime({ schema, table: "other" });
    const mainStream = await openStream(`${main.server.url}/realtime/events?user=42`);
    const otherStream = await openStream(`${other.server.url}/realtime/events?user=42`);
    await main.realtime.disconnectUser(42);
    await mainStream.until((c) => c.ended, "main's stream of user 42 ended");
    // The other table's stream of the same user id still receives.
    const marker = await other.realtime.publish({ userId: 42, type: "still_here" });
    await otherStream.until((c) => c.events.some((e) => e.id === marker.id), "the other's marker");
    expect(otherStream.ended).toBe(false);

    const ids = (list: { id: string }[]) => list.map((p) => p.id).sort();
    const mainProcesses = (await main.realtime.status()).processes;
    const otherProcesses = (await other.realtime.status()).processes;
    expect(mainProcesses).toHaveLength(1);
    expect(otherProcesses).toHaveLength(1);
    expect(ids(mainProcesses)).not.toEqual(ids(otherProcesses));

    // The same id in both tables: prune and activity of one never touch the other's row.
    const a = await main.realtime.publishGlobal({ type: "old" });
    const b = await other.realtime.publishGlobal({ type: "old" });
    await files.pool.query(`UPDATE "${schema}"."events" SET created_at = now() - interval '2 days'`);
    await files.pool.query(`UPDATE "${schema}"."other" SET created_at = now() - interval '2 days'`);
    await main.realtime.replay(a.id);
    const pruned = await main.realtime.prune({ olderThan: "1d" });
    expect(pruned.events).toBeGreaterThanOrEqual(1);
    expect(await main.realtime.events.get(a.id)).toBeNull();
    expect(await other.realtime.events.get(b.id)).not.toBeNull();
    expect((await other.realtime.events.activity(b.id)).some((e) => e.kind === "replayed")).toBe(false);
  });

  it('attack: storage off, schema "<s>_b" and schema "<s>" with table "b_events" do not hear each other', async () => {
    // Both name their NOTIFY channel "<s>_b_events": `${schema}_${table}` is not one-to-one.
    const base = freshSchema("chan");
    const left = createRealtime({
      connectionString: databaseUrl(),
      schema: `${base}_b`,
      storage: false,
      logger: quiet,
    });
    const right = createRealtime({
      connectionString: databaseUrl(),
      schema: base,
      table: "b_events",
      storage: false,
      logger: quiet,
    });
    onTestFinished(() => left.close());
    onTestFinished(() => right.close());
    const heard: RealtimeEvent[] = [];
    right.subscribe((event) => heard.push(event));
    const marker = new Promise<void>((resolve) =>
      right.subscribe((event) => {
        if (event.type === "right_marker") resolve();
      }),
    );
    await Promise.all([left.ready(), right.ready()]);
    await left.publishGlobal({ type: "left_only" });
    // Notifications of one channel arrive in commit order: the marker comes after the left event.
    await right.publishGlobal({ type: "right_marker" });
    await marker;
    expect(heard.map((event) => event.type)).toEqual(["right_marker"]);
  });
});
