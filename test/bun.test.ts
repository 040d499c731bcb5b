// `Bun.serve({ fetch: realtime.handler })` in a real Bun process (the `bun` devDependency's platform
// binary), serving the built package. Bun cuts a response that sends nothing for its idleTimeout (10 s by
// default, checked in 4 s ticks: after 8 to 12 s), while a stream's first heartbeat may come up to
// heartbeatMs (15 s) after it connected; the handler lifts the timeout of each event stream.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it, onTestFinished } from "vitest";
import { databaseUrl } from "./support/database.js";
import { listeningPort } from "./support/process.js";
import { migratedRealtime } from "./support/server.js";
import { openStream, type SseClient } from "./support/sse.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const FIXTURE = fileURLToPath(new URL("./fixtures/bun-server.js", import.meta.url));

/**
 * The Bun binary the `bun` package installed for this platform as an optional dependency (its own
 * postinstall, which would link it, is not relied on), or why there is none.
 */
function bunBinary(): { path: string } | { missing: string } {
  const arch = process.arch === "arm64" ? "aarch64" : process.arch;
  const base = `@oven/bun-${process.platform}-${arch}`;
  const require = createRequire(import.meta.url);
  const tried: string[] = [];
  for (const name of [base, `${base}-baseline`, `${base}-musl`, `${base}-musl-baseline`]) {
    tried.push(name);
    let folder: string;
    try {
      folder = path.dirname(require.resolve(`${name}/package.json`));
    } catch {
      continue;
    }
    const binary = path.join(folder, "bin", process.platform === "win32" ? "bun.exe" : "bun");
    if (existsSync(binary)) return { path: binary };
  }
  // Where the `bun` package's postinstall moves the platform binary when npm runs it (the file is a
  // small placeholder until then).
  try {
    const linked = path.join(path.dirname(require.resolve("bun/package.json")), "bin", "bun.exe");
    tried.push(linked);
    if (existsSync(linked) && statSync(linked).size > 1_000_000) return { path: linked };
  } catch {
    // No `bun` package.
  }
  return {
    missing: `no Bun binary for ${process.platform}-${process.arch} (looked for ${tried.join(", ")})`,
  };
}

/** The fixture under Bun on `schema`, once it listens. */
async function bunServing(bun: string, schema: string): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(bun, [FIXTURE, databaseUrl(), schema], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  onTestFinished(() => {
    if (child.exitCode === null) child.kill("SIGKILL");
  });
  const { port } = listeningPort(child, "bun");
  return { url: `http://127.0.0.1:${await port}`, child };
}

/** The longest time between two chunks of `stream` (its `connected` prelude included), in ms. */
function longestSilence(stream: SseClient): number {
  let longest = 0;
  for (let i = 1; i < stream.chunks.length; i++) {
    longest = Math.max(longest, (stream.chunks[i]?.at ?? 0) - (stream.chunks[i - 1]?.at ?? 0));
  }
  return longest;
}

describe("Bun.serve({ fetch: realtime.handler })", () => {
  it("C44 a stream opened mid heartbeat interval outlasts Bun's default idle timeout, then gets each event flushed", async (ctx) => {
    const bun = bunBinary();
    if ("missing" in bun) return ctx.skip(`Bun is not installed here: ${bun.missing}`);
    const { realtime, schema } = await migratedRealtime();
    onTestFinished(() => realtime.close());
    const { url } = await bunServing(bun.path, schema);

    expect((await fetch(`${url}/elsewhere`)).status).toBe(404);
    // The first stream starts the heartbeat sweep; the second connects after it (in the middle of a
    // sweep step), so its first heartbeat comes only on the fourth step, about 15 s later.
    const pacer = await openStream(`${url}/realtime/events`);
    const script = await fetch(`${url}/realtime/client.js`);
    expect(script.status).toBe(200);
    await script.text();
    const stream = await openStream(`${url}/realtime/events`);

    // The one deliberate idle period: nothing is published until the stream's first heartbeat.
    await stream.until((s) => s.comments.includes("ping") || s.ended, "the first heartbeat", 20_000);
    expect(stream.ended, "Bun cut the idle stream").toBe(false);
    const silence = longestSilence(stream);
    // Longer than Bun's idle timeout can ever be (10 s, in 4 s ticks): without the lifted timeout this
    // stream would have been cut.
    expect(silence, "the stream's first heartbeat came too soon to test the idle timeout").toBeGreaterThan(
      12_500,
    );

    for (let n = 1; n <= 3; n++) {
      const chunksBefore = stream.chunks.length;
      const publishedAt = Date.now();
      const sent = await realtime.publishGlobal({ type: "bun_event", detail: { n } });
      await stream.waitForEvents(n, 5_000);
      expect(stream.events[n - 1]).toEqual({
        id: sent.id,
        type: "bun_event",
        scope: "global",
        detail: { n },
      });
      // Flushed as written: the frame arrives whole, promptly, in its own chunk.
      const arrived = stream.chunks.slice(chunksBefore);
      expect(arrived.map((c) => c.text).join("")).toMatch(/^id: [^\n]+\ndata: [^\n]+\n\n$/);
      expect((arrived.at(-1)?.at ?? Number.POSITIVE_INFINITY) - publishedAt).toBeLessThan(1_000);
    }
    await pacer.waitForEvents(3);
    expect(stream.ended).toBe(false);
  }, 30_000);
});
