// The LISTEN connection against what managed and misconfigured servers do: an idle_session_timeout shorter
// than the heartbeat (C43), a server that cannot be reached at start, a role that may not log in yet.
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { createDatabase, dropDatabase, freePort } from "../scripts/postgres.mjs";
import { databaseUrl } from "./support/database.js";
import { withClient } from "./support/dedicated-postgres.js";
import {
  cleanup,
  collect,
  nextReconnect,
  RECONNECT_TIMEOUT_MS,
  recordingLogger,
  warnMessages,
  watchErrors,
} from "./support/observe.js";
import { migratedRealtime } from "./support/server.js";

/** C43's server setting, scaled down from the case's 2 s (events every 1.5 s instead of 3 s). */
const IDLE_SESSION_TIMEOUT_MS = 1_000;
const EVENT_GAP_MS = 1_500;
const EVENTS = 6;

/**
 * The run's database URL with another user and password, for a role of the test's own: the embedded
 * server asks for passwords, a server with trust authentication ignores them.
 */
function urlAs(user: string, password: string): string {
  const url = new URL(databaseUrl());
  url.username = user;
  url.password = password;
  return url.toString();
}

describe("C43 idle_session_timeout shorter than the heartbeat", () => {
  it("C43 the LISTEN session is queried often enough: every event once, at most one reconnect, and the log says why", {
    timeout: 60_000,
  }, async () => {
    // A database of its own: the setting applies to every new session in it, and to nothing else.
    const name = `pgrealtime_c43_${randomBytes(4).toString("hex")}`;
    const url = await createDatabase(databaseUrl(), name);
    cleanup("database", () => dropDatabase(databaseUrl(), name));
    await withClient(databaseUrl(), (client) =>
      client.query(`ALTER DATABASE ${name} SET idle_session_timeout = '${IDLE_SESSION_TIMEOUT_MS}ms'`),
    );
    const logger = recordingLogger();
    // The default heartbeatMs (15 s): far longer than the server lets a session idle.
    const { realtime } = await migratedRealtime({ connectionString: url, logger });
    cleanup("realtime", () => realtime.close());
    const subscriber = collect(realtime);
    let reconnects = 0;
    realtime.on("reconnect", () => reconnects++);
    await realtime.ready();

    const published: string[] = [];
    for (let n = 0; n < EVENTS; n++) {
      // The gap is the case's input: each one is longer than the server lets a session idle.
      await sleep(EVENT_GAP_MS);
      published.push((await realtime.publishGlobal({ type: "c43", detail: { n } })).id);
    }
    await subscriber.until(published.at(-1) as string);
    expect(subscriber.ids).toEqual(published);
    expect(reconnects).toBeLessThanOrEqual(1);
    expect(realtime.listenerState).toBe("listening");
    // A warning, so that the default logger shows it: the server's policy changes how the listener works.
    const shortened = logger.warns.filter((args) => String(args[1]).includes("idle_session_timeout"));
    expect(shortened).toEqual([
      [
        { idleSessionTimeoutMs: IDLE_SESSION_TIMEOUT_MS, livenessMs: IDLE_SESSION_TIMEOUT_MS / 2 },
        expect.any(String),
      ],
    ]);
    // The LISTEN connection warned only about the reconnect allowed above, if any. (The app's pool, not the
    // listener's to keep alive, logs one "idle pool connection failed" per connection the server ends.)
    const listenWarnings = warnMessages(logger).filter(
      (line) => line.includes("LISTEN") && !line.includes("idle_session_timeout"),
    );
    expect(listenWarnings).toHaveLength(reconnects);
  });
});

describe("a LISTEN connection that never connected", () => {
  it("a server that cannot be reached at start is reported as such, a few times, never as a lost connection", async () => {
    const port = await freePort();
    const logger = recordingLogger();
    const { realtime } = await migratedRealtime({
      listenConnectionString: `postgres://postgres@127.0.0.1:${port}/postgres`,
      logger,
    });
    cleanup("realtime", () => realtime.close());
    const { errors } = watchErrors(realtime);
    realtime.ready().catch(() => {}); // it never listens: close() rejects it
    // The outage is the input: nothing listens on that port for this long.
    await sleep(3_500);
    expect(realtime.listenerState).toBe("reconnecting");
    const lines = warnMessages(logger);
    // One line per growth of the backoff ceiling at most: 100, 200, … 3 200 ms, 5 s.
    expect(lines.length).toBeGreaterThanOrEqual(1);
    expect(lines.length).toBeLessThanOrEqual(Math.min(7, errors.length));
    for (const [n, line] of lines.entries()) {
      const { delayMs } = (logger.warns[n]?.[0] ?? {}) as { delayMs?: number };
      expect(line).toBe(
        `pgrealtime: cannot reach PostgreSQL for LISTEN (ECONNREFUSED 127.0.0.1:${port}); retrying in ${delayMs} ms`,
      );
    }
    expect(lines.join("\n")).not.toContain("lost");
    expect(logger.errors).toEqual([]);
  });

  it("a role that may not log in yet: 'attempt failed', then listening; a later loss is 'LISTEN connection lost'", async () => {
    const role = `rt_nologin_${randomBytes(4).toString("hex")}`;
    const password = randomBytes(12).toString("hex");
    await withClient(databaseUrl(), (client) =>
      client.query(`CREATE ROLE ${role} NOLOGIN PASSWORD '${password}'`),
    );
    cleanup("role", () =>
      withClient(databaseUrl(), async (client) => {
        await client.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", [
          role,
        ]);
        await client.query(`DROP ROLE IF EXISTS ${role}`);
      }),
    );
    const logger = recordingLogger();
    const { realtime, schema } = await migratedRealtime({
      listenConnectionString: urlAs(role, password),
      logger,
    });
    cleanup("realtime", () => realtime.close());
    const subscriber = collect(realtime);
    const { errors } = watchErrors(realtime);
    const ready = realtime.ready();
    await expect.poll(() => errors.length, { timeout: RECONNECT_TIMEOUT_MS }).toBeGreaterThanOrEqual(2);
    await withClient(databaseUrl(), (client) => client.query(`ALTER ROLE ${role} LOGIN`));
    await ready;
    const before = warnMessages(logger);
    expect(before.length).toBeGreaterThanOrEqual(1);
    for (const line of before) {
      expect(line).toMatch(
        new RegExp(
          `^pgrealtime: the LISTEN connection attempt failed \\(role "${role}" is not permitted to log in\\); retrying in \\d+ ms$`,
        ),
      );
    }

    const reconnected = nextReconnect(realtime);
    const { rows } = await withClient(databaseUrl(), (client) =>
      client.query(
        "SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity WHERE application_name = $1",
        [`pgrealtime listener ${schema}_events`],
      ),
    );
    expect(rows).toEqual([{ killed: true }]);
    await reconnected;
    expect(warnMessages(logger).slice(before.length)).toEqual([
      "pgrealtime: LISTEN connection lost; reconnecting",
    ]);
    const { id } = await realtime.publishGlobal({ type: "after_loss" });
    await subscriber.until(id);
    expect(subscriber.ids).toEqual([id]);
    expect(logger.errors).toEqual([]);
  });
});
