import { describe, expect, it, onTestFinished } from "vitest";
import { filePool } from "./support/database.js";
import { servedRealtime } from "./support/server.js";
import { SseClient } from "./support/sse.js";
import { carried } from "./support/wire.js";

const files = filePool();
const rowCount = (schema: string) => files.rowCount(schema);

describe("C42 misspelt keys", () => {
  const calls = {
    publish: { input: { userId: 42, type: "misspelt" }, known: ["userId", "type", "detail", "privateData"] },
    publishGlobal: { input: { type: "misspelt" }, known: ["type", "detail", "privateData"] },
    publishSystem: {
      input: { userId: 42, type: "misspelt" },
      known: ["userId", "type", "detail", "privateData"],
    },
  } as const;

  /** A TypeError that names the key that was wrong and every key that would have been right. */
  function expectNaming(error: unknown, wrong: string, known: readonly string[]): void {
    // Soft: every misuse is reported, not only the first.
    expect.soft(error, `${wrong}: ${String(error)}`).toBeInstanceOf(TypeError);
    const message = String((error as Error | null)?.message);
    expect.soft(message).toContain(wrong);
    for (const key of known) expect.soft(message).toMatch(new RegExp(`\\b${key}\\b`));
  }

  it.each(Object.keys(calls) as Array<keyof typeof calls>)(
    "C42 %s refuses { clinet }, details and private_data with a TypeError naming the known keys; nothing stored or delivered",
    async (method) => {
      const { realtime, schema, server, handled } = await servedRealtime();
      const streams = await Promise.all(
        ["?user=42", ""].map((query) => SseClient.open(`${server.url}/realtime/events${query}`)),
      );
      for (const stream of streams) onTestFinished(() => stream.close());
      await Promise.all(streams.map((stream) => stream.next("connected")));
      const { input, known } = calls[method];
      // Called in a then(), so that a synchronous throw counts like a rejection.
      const attempt = (value: object, options?: object) =>
        Promise.resolve()
          .then(() => (realtime[method] as (i: object, o?: object) => Promise<unknown>)(value, options))
          .catch((error: unknown) => error);

      const client = await files.pool.connect();
      try {
        await client.query("BEGIN");
        const error = await attempt(input, { clinet: client });
        await client.query("ROLLBACK");
        expectNaming(error, "clinet", ["client"]);
      } finally {
        client.release();
      }
      expectNaming(await attempt({ ...input, details: {} }), "details", known);
      expectNaming(await attempt({ ...input, private_data: {} }), "private_data", known);
      expect(await rowCount(schema), "rows stored by the refused calls").toBe(0);

      const fence = await realtime.publishGlobal({ type: "fence" });
      await expect.poll(() => handled.map((e) => e.id)).toEqual([fence.id]);
      for (const stream of streams) {
        await stream.until((s) => carried(s, fence.id), "the fence");
        expect(stream.events.map((e) => e.id)).toEqual([fence.id]);
      }
      expect(await rowCount(schema)).toBe(1);
    },
  );
});
