// The list page's live feed over real HTTP: every scope's events as `admin.event` summaries framed like
// pgrealtime events, never their detail or private data; heartbeats; ended by realtime.close().
import { describe, expect, it } from "vitest";
import { STAFF_COOKIE, servedAdmin } from "./support/admin.js";
import { SseClient } from "./support/sse.js";

async function openLive(admin: string, cookie = STAFF_COOKIE): Promise<SseClient> {
  const live = await SseClient.open(`${admin}/live`, { headers: { cookie } });
  return live;
}

describe("GET {basePath}/admin/live", () => {
  it("streams a summary of every event of every scope as rt:admin.event frames, without detail or private data", async () => {
    const { admin, realtime } = await servedAdmin();
    const live = await openLive(admin);
    try {
      expect(live.response.status).toBe(200);
      expect(live.response.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
      expect(live.response.headers.get("cache-control")).toBe("no-store, no-transform");
      expect(live.response.headers.get("content-security-policy")).toContain("default-src 'none'");
      expect(await live.next("connected")).toEqual({ event: "connected", data: '{"userId":null}' });
      expect(live.retries).toEqual([3000]);

      const user = await realtime.publish({
        userId: 42,
        type: "secret_thing",
        detail: { secret: "detail-secret" },
        privateData: { secret: "private-secret" },
      });
      const global = await realtime.publishGlobal({ type: "news", detail: { secret: "detail-secret" } });
      const system = await realtime.publishSystem({ type: "internal", detail: {} });
      await live.waitForEvents(3);

      expect(live.events).toEqual(
        [user, global, system].map((event) => ({
          id: event.id,
          type: "admin.event",
          scope: "global",
          detail: {
            id: event.id,
            type: event.type,
            scope: event.scope,
            userId: event.userId,
            createdAt: event.createdAt.toISOString(),
            replayOf: null,
          },
        })),
      );
      expect(live.messages.filter((m) => m.event === "message").map((m) => m.id)).toEqual([
        user.id,
        global.id,
        system.id,
      ]);
      const bytes = live.chunks.map((chunk) => chunk.text).join("");
      expect(bytes).not.toContain("detail-secret");
      expect(bytes).not.toContain("private-secret");

      const [replay] = await realtime.replay([user.id]);
      await live.waitForEvents(4);
      expect(live.events[3]?.detail).toMatchObject({ id: replay?.id, replayOf: user.id });
    } finally {
      live.close();
    }
  });

  it("heartbeats like the event stream (a comment, then event: ping) and ends with realtime.close()", async () => {
    const { admin, realtime } = await servedAdmin({ heartbeatMs: 300 });
    const live = await openLive(admin);
    await live.next("connected");
    await live.next("ping", 5_000);
    expect(live.comments).toContain("ping");
    await realtime.close();
    await live.until((client) => client.ended, "the end of the stream", 5_000);
    expect(live.ended).toBe(true);
  });

  it("is behind authorize like every admin answer", async () => {
    const { admin } = await servedAdmin();
    const live = await openLive(admin, "staff=no");
    expect(live.response.status).toBe(403);
    live.close();
  });
});
