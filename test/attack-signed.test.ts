// attack: storage off with `secret`. "A replayed one is dropped by its id" — a role that can LISTEN copies
// a signed payload and NOTIFYs it again later: after enough genuine traffic, or to a process that started
// after it was sent. And a process configured with the wrong secret.
import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import { encodeEvent } from "../src/channel.js";
import { createRealtime, type Realtime } from "../src/index.js";
import { databaseUrl, freshSchema } from "./support/database.js";
import { recordingLogger } from "./support/observe.js";
import { serveRealtime } from "./support/server.js";
import { SseClient } from "./support/sse.js";

const SECRET = "attack-secret-0123456789abcdef-0123456789";
const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A session that LISTENs on the channel (any role may) and NOTIFYs on it (any role may). */
async function eavesdropper(schema: string) {
  const client = new pg.Client({ connectionString: databaseUrl() });
  client.on("error", () => {});
  await client.connect();
  cleanups.push(() => client.end().catch(() => {}));
  const channel = `${schema}_events`;
  const heard: string[] = [];
  client.on("notification", (n) => heard.push(n.payload ?? ""));
  await client.query(`LISTEN "${channel}"`);
  return {
    heard,
    notify: (payloads: string[]) =>
      client.query("SELECT count(pg_notify($1, p)) FROM unnest($2::text[]) p", [channel, payloads]),
  };
}

function instance(schema: string, options: { secret?: string; logger?: object } = {}): Realtime {
  const realtime = createRealtime({
    connectionString: databaseUrl(),
    schema,
    storage: false,
    secret: SECRET,
    logger: quiet,
    ...options,
  } as never);
  cleanups.push(() => realtime.close());
  return realtime;
}

async function openStream(realtime: Realtime): Promise<SseClient> {
  const server = await serveRealtime(realtime);
  cleanups.push(() => server.close());
  const stream = await SseClient.open(`${server.url}/realtime/events`);
  cleanups.push(() => stream.close());
  await stream.next("connected");
  return stream;
}

describe("attack: signed storage-off payloads", () => {
  it("attack: a captured signed event NOTIFYd again after 10,000 genuine ones is not delivered again", async () => {
    const schema = freshSchema("atk_sg");
    const realtime = instance(schema);
    await realtime.ready();
    const spy = await eavesdropper(schema);
    const stream = await openStream(realtime);
    const x = await realtime.publishGlobal({ type: "payment_received", detail: { amount: 100 } });
    await stream.until((s) => s.events.some((e) => e.id === x.id), "X");
    await until(() => spy.heard.some((p) => p.includes(x.id)), "the spy to hear X");
    const captured = spy.heard.find((p) => p.includes(x.id)) as string;

    // Genuine traffic of other processes (same secret), well within the 5-minute window.
    const genuine = Array.from(
      { length: 10_001 },
      (_, i) =>
        encodeEvent({ type: "tick", scope: "global", userId: null, detailJson: `{"i":${i}}` }, SECRET)
          .payload,
    );
    // In bursts the stream can take (one burst over maxBufferedBytes would cut it as a slow reader).
    for (let i = 0; i < genuine.length; i += 500) {
      await spy.notify(genuine.slice(i, i + 500));
      const want = Math.min(genuine.length, i + 500) + 1;
      await until(() => stream.events.length >= want, `${want} events`, 20_000);
    }

    await spy.notify([captured]);
    await stream
      .until((s) => s.events.filter((e) => e.id === x.id).length > 1, "X again", 2_000)
      .catch(() => {});
    expect(stream.events.filter((e) => e.id === x.id).length, "times X reached the stream").toBe(1);
  }, 60_000);

  it("attack: a process with the wrong secret drops every event and warns that the secrets differ", async () => {
    const schema = freshSchema("atk_sg");
    const good = instance(schema);
    const logger = recordingLogger();
    const wrong = instance(schema, { secret: `${SECRET}-other`, logger });
    await Promise.all([good.ready(), wrong.ready()]);
    const stream = await openStream(wrong);
    for (let i = 0; i < 5; i++) await good.publishGlobal({ type: "lost", detail: { i } });
    const spy = await eavesdropper(schema);
    await good.publishGlobal({ type: "lost", detail: { i: 5 } });
    await until(() => spy.heard.length > 0, "the last event to be on the channel");
    await until(() => logger.warns.length + logger.errors.length > 0, "a warning", 3_000).catch(() => {});
    expect(stream.events, "events the wrong-secret process delivered").toEqual([]);
    expect(
      logger.warns.length + logger.errors.length,
      "warnings or errors about signed payloads it cannot verify",
    ).toBeGreaterThan(0);
  });
});
