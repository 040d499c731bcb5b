// attack: forged cursors. Whatever a client sends as Last-Event-ID or ?lastEventId=, it gets only the
// events it may see (never another user's), the server answers 200 with a replay or a reset, and keeps
// serving. Expected to hold; kept as a regression net.
import { afterEach, describe, expect, it } from "vitest";
import { identityTag } from "../src/cursor.js";
import type { Realtime } from "../src/index.js";
import { migratedRealtime, serveRealtime } from "./support/server.js";
import { SseClient } from "./support/sse.js";
import { cursorOf } from "./support/wire.js";

const REASONS = new Set([
  "malformed-id",
  "unknown-id",
  "pruned",
  "backlog-too-large",
  "history-changed",
  "identity-changed",
]);
const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

describe("attack: forged cursors", () => {
  it("attack: forged cursors never replay another user's events, and always get 200 with a replay or a reset", async () => {
    const { realtime }: { realtime: Realtime } = await migratedRealtime();
    cleanups.push(() => realtime.close());
    await realtime.ready();
    const server = await serveRealtime(realtime);
    cleanups.push(() => server.close());

    const watcher = await SseClient.open(`${server.url}/realtime/events?user=alice`);
    cleanups.push(() => watcher.close());
    await watcher.next("connected");
    const secrets = [];
    for (let i = 0; i < 5; i++) {
      secrets.push(await realtime.publish({ userId: "alice", type: "alice_secret", detail: { i } }));
      await realtime.publishGlobal({ type: "public", detail: { i } });
    }
    const last = secrets.at(-1) as { id: string };
    await watcher.until((s) => s.events.some((e) => e.id === last.id), "alice's events");
    const aliceToken = cursorOf(watcher, secrets[1]?.id as string);
    const [id, rowTag] = aliceToken.split(".");
    const cursors = [
      aliceToken,
      `${id}.${rowTag}.${identityTag("mallory")}`,
      `${id}.${rowTag}.0`,
      secrets[0]?.id as string,
      "0",
      "-1",
      "1e3",
      "9223372036854775807",
      "9223372036854775808",
      "99999999999999999999",
      `${id}.zzzzz.zzzz`,
      `${id}..`,
      `${id}.${rowTag}.${identityTag("mallory")}.1`,
      "1; DROP TABLE events",
      "1' OR '1'='1",
      `${"9".repeat(5000)}`,
      " 1",
      "",
    ];
    for (const user of ["mallory", null]) {
      for (const cursor of cursors) {
        const query = new URLSearchParams({ lastEventId: cursor });
        if (user) query.set("user", user);
        const stream = await SseClient.open(`${server.url}/realtime/events?${query}`);
        cleanups.push(() => stream.close());
        expect(stream.response.status, `status for ${JSON.stringify(cursor)}`).toBe(200);
        await stream.next("connected");
        const marker = await realtime.publishGlobal({ type: "marker", detail: {} });
        await stream.until((s) => s.events.some((e) => e.id === marker.id), `marker after ${cursor}`);
        stream.close();
        const what = `${user} with ${JSON.stringify(cursor.slice(0, 40))}`;
        expect(
          stream.events.filter((e) => e.type === "alice_secret"),
          what,
        ).toEqual([]);
        for (const reset of stream.messages.filter((m) => m.event === "reset")) {
          expect(REASONS.has(JSON.parse(reset.data).reason), what).toBe(true);
        }
      }
    }
  }, 60_000);
});
