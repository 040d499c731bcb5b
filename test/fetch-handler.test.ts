// realtime.handler(request) as any Fetch-API runtime (Hono, Bun, Deno, workers) calls it: a Request in,
// a Response with a ReadableStream body out, consumed and cancelled like a runtime does.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Logger, Realtime } from "../src/index.js";
import { migratedRealtime } from "./support/server.js";

const BASE = "http://app.test";

function recordingLogger(): Logger & { errors: unknown[][] } {
  const errors: unknown[][] = [];
  return { errors, debug() {}, info() {}, warn() {}, error: (...args: unknown[]) => errors.push(args) };
}

/** Reads a stream body until `done(text)` holds. */
async function readUntil(reader: ReadableStreamDefaultReader<Uint8Array>, done: (text: string) => boolean) {
  const decoder = new TextDecoder();
  let text = "";
  while (!done(text)) {
    const { value, done: ended } = await reader.read();
    if (ended) break;
    text += decoder.decode(value, { stream: true });
  }
  return text;
}

describe("the Fetch API handler", () => {
  let realtime: Realtime;
  const logger = recordingLogger();
  beforeAll(async () => {
    ({ realtime } = await migratedRealtime({
      logger,
      authenticate: (request) => request.headers.get("x-user"),
    }));
  });
  afterAll(() => realtime.close());

  it("streams with the SPEC headers and routes by the authenticated user", async () => {
    const response = await realtime.handler(
      new Request(`${BASE}/realtime/events`, { headers: { "x-user": "7" } }),
    );
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    expect(response.headers.get("cache-control")).toBe("no-cache, no-transform");
    expect(response.headers.get("x-accel-buffering")).toBe("no");
    // A hop-by-hop header would break HTTP/2; the Fetch handler never sets one.
    expect(response.headers.get("connection")).toBeNull();
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    expect(await readUntil(reader, (t) => t.includes("event: connected"))).toBe(
      'retry: 3000\n\nevent: connected\ndata: {"userId":"7"}\n\n',
    );
    await realtime.publish({ userId: 8, type: "not_mine" });
    const mine = await realtime.publish({ userId: 7, type: "mine", detail: { ok: true } });
    const text = await readUntil(reader, (t) => t.includes(`id: ${mine.id}`));
    // The id line is the cursor: the event id, the row's tag and the stream's identity tag.
    expect(text).toMatch(
      new RegExp(
        `^id: ${mine.id}\\.[0-9a-z]{1,5}\\.[0-9a-z]{1,4}\ndata: \\{"id":"${mine.id}","type":"mine","scope":"user","detail":\\{"ok":true\\}\\}\n\n$`,
      ),
    );
    await reader.cancel();
  });

  it("C31 runs the cleanup exactly once when the consumer cancels, and logs no error", async () => {
    const response = await realtime.handler(new Request(`${BASE}/realtime/events`));
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    await readUntil(reader, (t) => t.includes("connected"));
    expect(realtime.connectionCount).toBe(1);
    await reader.cancel();
    expect(realtime.connectionCount).toBe(0);
    // An event routed after the cancel must meet no half-closed stream ("controller already closed").
    const seen: string[] = [];
    const unsubscribe = realtime.subscribe((e) => seen.push(e.id));
    await realtime.ready();
    const after = await realtime.publishGlobal({ type: "after_cancel" });
    await expect.poll(() => seen).toEqual([after.id]);
    unsubscribe();
    expect(realtime.connectionCount).toBe(0);
    expect(logger.errors).toEqual([]);
  });

  it("C31 runs the cleanup once when the request is aborted, then the stream ends", async () => {
    const controller = new AbortController();
    const response = await realtime.handler(
      new Request(`${BASE}/realtime/events`, { signal: controller.signal }),
    );
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    await readUntil(reader, (t) => t.includes("connected"));
    expect(realtime.connectionCount).toBe(1);
    controller.abort();
    expect(realtime.connectionCount).toBe(0);
    expect((await reader.read()).done).toBe(true);
    await reader.cancel();
    expect(realtime.connectionCount).toBe(0);
    expect(logger.errors).toEqual([]);
  });

  it("drops a stream whose reader stopped reading, with its queue, and keeps the others", async () => {
    const { realtime: small } = await migratedRealtime({ maxBufferedBytes: 1024, logger });
    const stalled = await small.handler(new Request(`${BASE}/realtime/events`));
    const reading = await small.handler(new Request(`${BASE}/realtime/events`));
    const reader = (reading.body as ReadableStream<Uint8Array>).getReader();
    await readUntil(reader, (t) => t.includes("connected"));
    const big = { s: "x".repeat(2000) };
    // The reading client reads while the events are published; the stalled one never does.
    const readAll = readUntil(reader, (t) => t.includes('"type":"fence"'));
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push((await small.publishGlobal({ type: "big", detail: big })).id);
    await small.publishGlobal({ type: "fence" });
    const text = await readAll;
    for (const id of ids) expect(text).toContain(`\ndata: {"id":"${id}",`);
    expect(small.connectionCount).toBe(1);
    await expect((stalled.body as ReadableStream<Uint8Array>).getReader().read()).rejects.toThrow(
      /stopped reading/,
    );
    await reader.cancel();
    await small.close();
  });

  it("resumes from the lastEventId query parameter", async () => {
    const first = await realtime.publishGlobal({ type: "first" });
    const second = await realtime.publishGlobal({ type: "second" });
    const response = await realtime.handler(new Request(`${BASE}/realtime/events?lastEventId=${first.id}`));
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    const text = await readUntil(reader, (t) => t.includes(`id: ${second.id}`));
    expect(text).not.toContain(`"id":"${first.id}"`);
    await reader.cancel();
  });

  it("serves the client script with an ETag and answers 304 to a matching If-None-Match", async () => {
    const response = await realtime.handler(new Request(`${BASE}/realtime/client.js`));
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    const etag = response.headers.get("etag") as string;
    expect(etag).toMatch(/^".+"$/);
    expect((await response.text()).length).toBeGreaterThan(100);
    const again = await realtime.handler(
      new Request(`${BASE}/realtime/client.js`, { headers: { "If-None-Match": etag } }),
    );
    expect(again.status).toBe(304);
    expect(await again.text()).toBe("");
  });

  it("answers 404 for other paths and 405 for other methods", async () => {
    expect((await realtime.handler(new Request(`${BASE}/elsewhere`))).status).toBe(404);
    expect((await realtime.handler(new Request(`${BASE}/realtime/events/x`))).status).toBe(404);
    const post = await realtime.handler(new Request(`${BASE}/realtime/events`, { method: "POST" }));
    expect(post.status).toBe(405);
    expect(post.headers.get("allow")).toBe("GET, HEAD");
  });

  it("refuses with 500 when authenticate throws, never serving the stream anonymously", async () => {
    const { realtime: strict } = await migratedRealtime({
      logger,
      authenticate: () => {
        throw new Error("session store down");
      },
    });
    const response = await strict.handler(new Request(`${BASE}/realtime/events`));
    expect(response.status).toBe(500);
    expect(logger.errors.pop()?.[0]).toMatchObject({ err: { message: "session store down" } });
    await strict.close();
  });

  it("answers 401 to an anonymous request when allowAnonymous is false", async () => {
    const { realtime: closed } = await migratedRealtime({ allowAnonymous: false, authenticate: () => null });
    expect((await closed.handler(new Request(`${BASE}/realtime/events`))).status).toBe(401);
    await closed.close();
  });
});
