// attack: sign-out during admission. README: "a stream that was being admitted for that user is refused
// (503) and its client authenticates again". An authenticate that has looked the session up (still valid)
// and is finishing other work when the sign-out arrives.

import { afterEach, describe, expect, it } from "vitest";
import { toNodeHandler } from "../src/adapters/node.js";
import type { Realtime } from "../src/index.js";
import { listen, migratedRealtime } from "./support/server.js";
import { SseClient } from "./support/sse.js";

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

describe("attack: admission", () => {
  it("attack: a stream whose authenticate is still running when disconnectUser lands is refused and never gets later events", async () => {
    const { realtime }: { realtime: Realtime } = await migratedRealtime();
    cleanups.push(() => realtime.close());
    await realtime.ready();
    let releaseAuth!: () => void;
    const authGate = new Promise<void>((resolve) => {
      releaseAuth = resolve;
    });
    cleanups.push(() => releaseAuth());
    let authStarted = false;
    const server = await listen(
      toNodeHandler(realtime, {
        async authenticate(req) {
          const url = new URL(req.url ?? "/", "http://localhost");
          const user = url.searchParams.get("user");
          if (url.searchParams.get("slow") === null) return user;
          // The session was looked up (valid); the rest of the work finishes after the sign-out.
          authStarted = true;
          await authGate;
          return user;
        },
      }),
    );
    cleanups.push(() => server.close());

    const old = await SseClient.open(`${server.url}/realtime/events?user=u1`);
    cleanups.push(() => old.close());
    await old.next("connected");
    const admitting = SseClient.open(`${server.url}/realtime/events?user=u1&slow=1`);
    const deadline = Date.now() + 5_000;
    while (!authStarted && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(authStarted).toBe(true);

    await realtime.disconnectUser("u1");
    // The sign-out has reached this process once it ended the old stream.
    await old.until((s) => s.ended, "the old stream to end");
    releaseAuth();
    const stream = await admitting;
    cleanups.push(() => stream.close());
    if (stream.response.status === 200) {
      const after = await realtime.publish({ userId: "u1", type: "after_signout", detail: {} });
      await stream
        .until((s) => s.events.some((e) => e.id === after.id), "the post-sign-out event", 2_000)
        .catch(() => {});
    }
    expect(
      { status: stream.response.status, events: stream.events.map((e) => e.type) },
      "the stream that was being admitted during the sign-out",
    ).toEqual({ status: 503, events: [] });
  });
});
