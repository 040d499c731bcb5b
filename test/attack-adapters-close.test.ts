// Attacks on shutdown through every adapter: `realtime.close()` with streams open must end each of them
// (the client sees the end), and the server must then close gracefully, with nothing left holding it.
import { request as httpRequest, type IncomingMessage } from "node:http";
import { describe, expect, it, onTestFinished } from "vitest";
import { ADAPTERS, gatedAuthenticate } from "./support/adapters.js";
import { migratedRealtime } from "./support/server.js";

/** A raw stream on its own socket (no pooled agent that keeps a spare connection open). */
async function rawStream(
  url: string,
): Promise<{ res: IncomingMessage; text: () => string; ended: Promise<void> }> {
  const { hostname, port, pathname, search } = new URL(url);
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    const req = httpRequest({ hostname, port, path: pathname + search, agent: false }, resolve);
    req.on("error", reject);
    req.end();
    onTestFinished(() => void req.destroy());
  });
  let text = "";
  res.setEncoding("utf8");
  const connected = new Promise<void>((resolve) =>
    res.on("data", (chunk: string) => {
      text += chunk;
      if (text.includes("event: connected")) resolve();
    }),
  );
  const ended = new Promise<void>((resolve) => res.once("close", () => resolve()));
  await connected;
  return { res, text: () => text, ended };
}

describe.each(ADAPTERS)("$name", (adapter) => {
  it("attack: realtime.close() with streams open ends them all, and the server then closes gracefully", async () => {
    const { realtime } = await migratedRealtime();
    const served = await adapter.serve(realtime, (url) => url.searchParams.get("user"));
    await realtime.ready();
    const streams = await Promise.all([
      rawStream(`${served.url}/realtime/events?user=alice`),
      rawStream(`${served.url}/realtime/events?user=alice`),
      rawStream(`${served.url}/realtime/events`),
    ]);
    expect(streams.map((s) => s.res.statusCode)).toEqual([200, 200, 200]);
    expect(realtime.connectionCount).toBe(3);
    await realtime.close();
    await Promise.all(streams.map((s) => s.ended));
    expect(realtime.connectionCount).toBe(0);
    // The server holds no connection of ours: a graceful close resolves by itself.
    await served.closeGracefully();
  });

  it("attack: a stream asked for after realtime.close() is refused, not opened", async () => {
    const { realtime } = await migratedRealtime();
    const served = await adapter.serve(realtime, () => null);
    await realtime.ready();
    await realtime.close();
    const response = await fetch(`${served.url}/realtime/events`);
    expect(response.status).toBe(503);
    await response.text();
    expect(realtime.connectionCount).toBe(0);
  });

  it("attack: realtime.close() while authenticate is still running refuses that stream", async () => {
    const { realtime } = await migratedRealtime();
    const gated = gatedAuthenticate("alice");
    const served = await adapter.serve(realtime, gated.authenticate);
    await realtime.ready();
    const pending = fetch(`${served.url}/realtime/events`);
    await gated.started;
    const closing = realtime.close();
    gated.release();
    const response = await pending;
    expect(response.status).toBe(503);
    await response.text();
    await closing;
    expect(realtime.connectionCount).toBe(0);
    await served.closeGracefully();
  });
});
