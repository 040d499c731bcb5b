// PgBouncer as a child process, in front of a given database, for tests of what a pooler does to LISTEN.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../../scripts/postgres.mjs";

const CANDIDATES = ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer", "/usr/local/bin/pgbouncer"];
const START_TIMEOUT_MS = 10_000;
const LOG_LINES = 40;

/** The pgbouncer binary, or undefined when it is not installed (`apt-get install pgbouncer`). */
export const pgbouncerBinary: string | undefined = CANDIDATES.find((path) => existsSync(path));

export interface RunningPgBouncer {
  /** The URL of `target`'s database through the pooler, as the same user. */
  readonly url: string;
  /** Stops the pooler and deletes its files. Safe to call more than once. */
  stop(): Promise<void>;
}

/**
 * Starts PgBouncer in front of the database of `target` (a postgres:// URL with host and database).
 *
 * @param poolMode `transaction` is the mode that breaks LISTEN: each transaction may run on another backend.
 */
export async function startPgBouncer(
  target: string,
  poolMode: "session" | "transaction" = "transaction",
): Promise<RunningPgBouncer> {
  if (!pgbouncerBinary) throw new Error("pgbouncer is not installed");
  const url = new URL(target);
  const user = decodeURIComponent(url.username) || "postgres";
  const database = decodeURIComponent(url.pathname.slice(1)) || user;
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), "pgrealtime-pgbouncer-"));
  // PgBouncer refuses to run as root; as root it is started with -u nobody, which must read these files.
  await chmod(dir, 0o755);
  const server = [
    `host=${url.hostname.replace(/^\[|\]$/g, "")}`,
    `port=${url.port || "5432"}`,
    `dbname=${database}`,
    `user=${user}`,
    url.password ? `password=${decodeURIComponent(url.password)}` : "",
  ]
    .filter(Boolean)
    .join(" ");
  const ini = join(dir, "pgbouncer.ini");
  const authFile = join(dir, "users.txt");
  await writeFile(authFile, `"${user}" ""\n`, { mode: 0o644 });
  await writeFile(
    ini,
    [
      "[databases]",
      `${database} = ${server}`,
      "[pgbouncer]",
      "listen_addr = 127.0.0.1",
      `listen_port = ${port}`,
      // No Unix socket: nothing to write anywhere, and nothing left behind.
      "unix_socket_dir =",
      "auth_type = trust",
      `auth_file = ${authFile}`,
      `pool_mode = ${poolMode}`,
      // Session mode holds one server connection per client: room for the app's pool (10), LISTEN and probe.
      "default_pool_size = 20",
      "ignore_startup_parameters = extra_float_digits,options",
      "",
    ].join("\n"),
    { mode: 0o644 },
  );

  const args = process.getuid?.() === 0 ? ["-u", "nobody", ini] : [ini];
  const child = spawn(pgbouncerBinary, args, { stdio: ["ignore", "pipe", "pipe"] });
  const log: string[] = [];
  // A failed spawn emits 'error' and never 'exit'.
  const exited = new Promise<void>((resolve) => {
    child.once("exit", () => resolve());
    child.once("error", () => resolve());
  });
  const up = new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      for (const line of chunk.toString("utf8").split("\n")) {
        if (!line.trim()) continue;
        log.push(line);
        if (log.length > LOG_LINES) log.shift();
        if (line.includes("process up")) resolve();
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("error", reject);
    void exited.then(() => reject(new Error(`pgbouncer exited while starting:\n${log.join("\n")}`)));
    setTimeout(
      () => reject(new Error(`pgbouncer did not start within ${START_TIMEOUT_MS} ms:\n${log.join("\n")}`)),
      START_TIMEOUT_MS,
    ).unref();
  });

  // A worker that exits without running its afterAll (a crash, a timeout) must not leave the pooler behind.
  const killOnExit = () => child.kill("SIGTERM");
  process.once("exit", killOnExit);
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      process.removeListener("exit", killOnExit);
      // SIGTERM is PgBouncer's immediate shutdown; SIGINT would wait for clients to leave.
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    })();
    return stopping;
  };
  try {
    await up;
  } catch (error) {
    await stop();
    throw error;
  }
  const pooled = new URL(target);
  pooled.host = `127.0.0.1:${port}`;
  return { url: pooled.toString(), stop };
}
