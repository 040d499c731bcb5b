// Who gets a stream, and until when: the per-user limit under a burst of requests whose authentication
// resolves at once (C39), and signing a user out of every process (C41).
import type { IncomingMessage } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it, onTestFinished } from "vitest";
import { toNodeHandler } from "../src/adapters/node.js";
import type { Realtime, RealtimeEvent, UserId } from "../src/index.js";
import { freshSchema } from "./support/database.js";
import { listen, migratedRealtime, serveRealtime } from "./support/server.js";
import { SseClient } from "./support/sse.js";
import { carried, lastCursor } from "./support/wire.js";

const BURST = 30;
const PER_USER = 2;

/** An `authenticate` that answers after a few milliseconds, as a session store lookup does. */
async function slowly(user: string | null): Promise<string | null> {
  await sleep(2 + Math.floor(Math.random() * 4));
  return user;
}

type Answer = { status: number; retryAfter: string | null; close(): void };

/** `BURST` stream requests of user 42 at once through `realtime.handler`, as a Fetch runtime sends them. */
async function burstThroughFetch(realtime: Realtime): Promise<Answer[]> {
  return Promise.all(
    Array.from({ length: BURST }, async () => {
      const response = await realtime.handler(
        new Request("http://app.test/realtime/events", { headers: { "x-user": "42" } }),
      );
      return {
        status: response.status,
        retryAfter: response.headers.get("retry-after"),
        close: () => void response.body?.cancel().catch(() => {}),
      };
    }),
  );
}

/** The same burst over real HTTP, through `toNodeHandler` with its own async `authenticate`. */
async function burstThroughNode(realtime: Realtime): Promise<Answer[]> {
  const userOf = (req: IncomingMessage) => (req.headers["x-user"] as string | undefined) ?? null;
  const server = await listen(toNodeHandler(realtime, { authenticate: (req) => slowly(userOf(req)) }));
  onTestFinished(() => server.close());
  return Promise.all(
    Array.from({ length: BURST }, async () => {
      const stream = await SseClient.open(`${server.url}/realtime/events`, { headers: { "x-user": "42" } });
      return {
        status: stream.response.status,
        retryAfter: stream.response.headers.get("retry-after"),
        close: () => stream.close(),
      };
    }),
  );
}

describe("C39 the per-user limit under a burst", () => {
  it.each([
    ["the Fetch handler", "after ready()", burstThroughFetch, true],
    ["the Fetch handler", "right after start, racing the LISTEN start", burstThroughFetch, false],
    ["toNodeHandler", "after ready()", burstThroughNode, true],
    ["toNodeHandler", "right after start, racing the LISTEN start", burstThroughNode, false],
  ] as const)(
    "C39 %s, %s: 30 requests of one user admit 2, the rest get 429 with Retry-After",
    async (_via, _when, burst, warm) => {
      const { realtime } = await migratedRealtime({
        maxConnectionsPerUser: PER_USER,
        authenticate: (request) => slowly(request.headers.get("x-user")),
      });
      onTestFinished(() => realtime.close());
      if (warm) await realtime.ready();
      const answers = await burst(realtime);
      onTestFinished(() => {
        for (const answer of answers) answer.close();
      });
      const statuses = answers.map((a) => a.status);
      expect(
        statuses.filter((s) => s === 200),
        `statuses ${statuses}`,
      ).toHaveLength(PER_USER);
      expect(statuses.filter((s) => s !== 200)).toEqual(Array(BURST - PER_USER).fill(429));
      for (const refused of answers.filter((a) => a.status !== 200)) {
        expect(refused.retryAfter).toMatch(/^[1-9]\d*$/);
      }
      expect(realtime.connectionCount).toBe(PER_USER);
    },
  );
});

type WithDisconnect = Realtime & { disconnectUser(userId: UserId): Promise<void> };

describe("C41 signing a user out of every process", () => {
  it("C41 disconnectUser(42) on one instance ends 42's streams on both; later events never reach them; 42 can come back", async () => {
    const schema = freshSchema();
    const instances = await Promise.all([migratedRealtime({ schema }), migratedRealtime({ schema })]);
    const [a, b] = instances.map(({ realtime }) => realtime as WithDisconnect) as [
      WithDisconnect,
      WithDisconnect,
    ];
    onTestFinished(() => Promise.all([a.close(), b.close()]).then(() => {}));
    const servers = await Promise.all([serveRealtime(a), serveRealtime(b)]);
    onTestFinished(() => Promise.all(servers.map((s) => s.close())).then(() => {}));
    const open = async (server: number, user: string | null, cursor: string | null = null) => {
      const base = (servers[server] as { url: string }).url;
      const stream = await SseClient.open(`${base}/realtime/events${user === null ? "" : `?user=${user}`}`, {
        headers: cursor === null ? {} : { "Last-Event-ID": cursor },
      });
      onTestFinished(() => stream.close());
      expect(stream.response.status).toBe(200);
      await stream.next("connected");
      return stream;
    };
    await Promise.all([a.ready(), b.ready()]);
    const tabs = [await open(0, "42"), await open(1, "42")];
    const others = [await open(0, null), await open(1, "7")];
    const seen = await a.publish({ userId: 42, type: "before_sign_out" });
    for (const tab of tabs) await tab.until((s) => carried(s, seen.id), "the event before sign-out");

    await a.disconnectUser(42);
    const afterSignOut: RealtimeEvent[] = [
      await a.publish({ userId: 42, type: "after_sign_out", detail: { from: "a" } }),
      await b.publish({ userId: 42, type: "after_sign_out", detail: { from: "b" } }),
    ];
    for (const tab of tabs) {
      await tab.until((s) => s.ended, "the old stream to end", 5_000);
      for (const event of afterSignOut) expect(carried(tab, event.id), `event ${event.id}`).toBe(false);
    }
    // Nobody else was signed out.
    const fence = await b.publishGlobal({ type: "fence" });
    for (const stream of others) {
      await stream.until((s) => carried(s, fence.id), "the fence");
      expect(stream.ended).toBe(false);
    }

    // authenticate decides again: 42 comes back on both, and resuming gets what was published meanwhile.
    const back = [await open(0, "42", lastCursor(tabs[0] as SseClient)), await open(1, "42")];
    const welcome = await b.publish({ userId: 42, type: "welcome_back" });
    for (const stream of back) await stream.until((s) => carried(s, welcome.id), "the new event");
    for (const event of afterSignOut) expect(carried(back[0] as SseClient, event.id)).toBe(true);
  });
});
