// The live feed's own bookkeeping, with the one part of the instance it uses (subscribe) recorded:
// each stream subscribes once and unsubscribes when it ends, however it ends.
import { describe, expect, it } from "vitest";
import type { RealtimeEvent } from "../types.js";
import { LiveFeed } from "./live.js";

function recordingRealtime() {
  const handlers = new Set<(event: RealtimeEvent) => void>();
  return {
    handlers,
    subscribe(handler: (event: RealtimeEvent) => void) {
      handlers.add(handler);
      return () => handlers.delete(handler);
    },
  };
}

const silent = { debug() {}, info() {}, warn() {}, error() {} };

/** Reads until the text holds `until`, or to the end of the stream without it. */
async function read(reader: ReadableStreamDefaultReader<Uint8Array>, until?: string): Promise<string> {
  const decoder = new TextDecoder();
  let text = "";
  while (until === undefined || !text.includes(until)) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
  }
  return text;
}

describe("LiveFeed", () => {
  it("subscribes per stream; a reader that cancels, an aborted request and close() each unsubscribe", async () => {
    const realtime = recordingRealtime();
    const feed = new LiveFeed(realtime, { heartbeatMs: 60_000, retryMs: 1000, logger: silent });
    const aborted = new AbortController();
    const cancelled = feed.serve(new Request("http://x/live"));
    const viaAbort = feed.serve(new Request("http://x/live", { signal: aborted.signal }));
    const kept = feed.serve(new Request("http://x/live"));
    expect(realtime.handlers.size).toBe(3);

    const reader = (cancelled.body as ReadableStream<Uint8Array>).getReader();
    expect(await read(reader, "event: connected")).toBe(
      'retry: 1000\n\nevent: connected\ndata: {"userId":null}\n\n',
    );
    await reader.cancel();
    expect(realtime.handlers.size).toBe(2);
    aborted.abort();
    expect(realtime.handlers.size).toBe(1);

    const keptReader = (kept.body as ReadableStream<Uint8Array>).getReader();
    feed.close();
    expect(realtime.handlers.size).toBe(0);
    // Ended: read to its end, which comes.
    expect(await read(keptReader)).toContain("event: connected");
    expect(feed.serve(new Request("http://x/live")).status).toBe(503);
    expect(realtime.handlers.size).toBe(0);
    expect(viaAbort.status).toBe(200);
  });

  it("writes each event as an admin.event summary and pings an idle stream", async () => {
    const realtime = recordingRealtime();
    const feed = new LiveFeed(realtime, { heartbeatMs: 40, retryMs: 1000, logger: silent });
    const reader = (feed.serve(new Request("http://x/live")).body as ReadableStream<Uint8Array>).getReader();
    const createdAt = new Date("2024-05-01T10:00:00.000Z");
    for (const handler of realtime.handlers) {
      handler({
        id: "9",
        type: "t",
        scope: "user",
        userId: "7",
        detail: { no: 1 },
        createdAt,
        replayOf: "3",
      });
    }
    expect(await read(reader, "event: ping")).toContain(
      'id: 9\ndata: {"id":"9","type":"admin.event","scope":"global","detail":{"id":"9","type":"t","scope":"user","userId":"7","createdAt":"2024-05-01T10:00:00.000Z","replayOf":"3"}}\n\n',
    );
    feed.close();
  });
});
