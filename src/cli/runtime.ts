// What every command shares at run time: the database from DATABASE_URL, stdout that goes quiet when
// its reader leaves (EPIPE), stop on Ctrl-C, and the exit codes: 0 done, 1 failed, 2 bad arguments.
import type { Realtime } from "../api.js";
import { RealtimeError } from "../errors.js";
import type { Logger } from "../types.js";
import { HelpRequested, UsageError } from "./args.js";

/** One command of the CLI. */
export interface Command {
  name: string;
  /** One line for the list of commands in `pgrealtime --help`. */
  summary: string;
  /** The command's own usage, printed by `--help` and after a bad argument. */
  usage: string;
  /** Runs the command on its arguments (after the command name); resolves to the exit code. */
  run(argv: string[]): Promise<number>;
}

/** A runtime failure the command tells in one line (exit 1), such as an id that names no event. */
export class Failure extends Error {
  override name = "Failure";
}

/** The schemes node-postgres reads a connection string in. */
const SCHEMES = new Set(["postgres:", "postgresql:", "socket:"]);

/**
 * Whether node-postgres can read `value` as a connection string: a URL with a PostgreSQL scheme (an empty
 * host, `postgres://user@/db`, means the default socket), or a socket directory (`/var/run/postgresql db`).
 * Anything else it would turn into a relative URL and fail later with a misleading host name.
 */
function isConnectionUrl(value: string): boolean {
  if (value.startsWith("/")) return true;
  try {
    return SCHEMES.has(new URL(value.replace("@/", "@localhost/")).protocol);
  } catch {
    return false;
  }
}

/** The connection string from DATABASE_URL; never echoed, as it may hold a password. */
function databaseUrl(): string {
  const value = process.env.DATABASE_URL;
  if (!value) throw new UsageError("set DATABASE_URL, e.g. DATABASE_URL=postgres://user@localhost:5432/app");
  if (!isConnectionUrl(value)) {
    throw new UsageError(
      "DATABASE_URL is not a PostgreSQL connection URL; expected postgres://user:password@host:5432/database",
    );
  }
  return value;
}

/** While a start-up is probed, its failure is the one line told: the listener's retry notes are not. */
let startingUp = false;

/** The library's warnings and errors as one line each on stderr; debug and info dropped. */
const stderrLogger: Logger = {
  debug() {},
  info() {},
  warn: (...args: unknown[]) => logLine(args),
  error: (...args: unknown[]) => logLine(args),
};

function logLine(args: unknown[]): void {
  if (startingUp) return;
  const message = args.find((arg) => typeof arg === "string") ?? "";
  const fields = args.find((arg) => typeof arg === "object" && arg !== null) as { err?: unknown } | undefined;
  const cause = fields?.err === undefined ? "" : failureMessage(fields.err);
  const text = cause && !message.includes(cause) ? `${message} (${cause})` : message;
  process.stderr.write(`${text.startsWith("pgrealtime:") ? text : `pgrealtime: ${text}`}\n`);
}

/**
 * Runs `body` with an instance on DATABASE_URL and the command's `--schema` / `--table`, and closes it
 * after. It records no delivery activity: a CLI process is not a delivery path.
 *
 * @throws UsageError when DATABASE_URL is missing or malformed, or an option is invalid.
 */
export async function withRealtime<T>(
  values: { schema?: string | undefined; table?: string | undefined },
  body: (realtime: Realtime) => Promise<T>,
): Promise<T> {
  const connectionString = databaseUrl();
  // Loaded here, not up front: --help and bad arguments are told without loading the library and pg.
  const { createRealtime } = await import("../realtime.js");
  let realtime: Realtime;
  try {
    realtime = createRealtime({
      connectionString,
      schema: values.schema,
      table: values.table,
      activity: false,
      logger: stderrLogger,
    });
  } catch (error) {
    // Only --schema and --table reach the options from the command line.
    if (error instanceof TypeError || error instanceof RangeError) throw new UsageError(error.message);
    throw error;
  }
  try {
    return await body(realtime);
  } finally {
    await realtime.close();
  }
}

/** How the start of the LISTEN connection went: `ms` it took (to the failure, if it failed). */
export type Probe = { ok: true; ms: number } | { ok: false; ms: number; error: unknown };

/**
 * Awaits `realtime.ready()`, failing at its first error (an unreachable database would otherwise be
 * retried forever) or after `timeoutMs`, with the listener's own retry notes kept off stderr meanwhile.
 */
export async function probeListener(
  realtime: Realtime,
  timeoutMs = Number.POSITIVE_INFINITY,
): Promise<Probe> {
  const started = performance.now();
  let removeObserver = () => {};
  let timer: NodeJS.Timeout | undefined;
  const failed = new Promise<never>((_, reject) => {
    removeObserver = realtime.on("error", reject);
    if (Number.isFinite(timeoutMs)) {
      timer = setTimeout(
        () => reject(new RealtimeError("LISTEN_UNAVAILABLE", `not listening after ${timeoutMs} ms`)),
        timeoutMs,
      );
    }
  });
  const ready = realtime.ready();
  // Whichever loses the race settles later, after close() perhaps: never an unhandled rejection.
  ready.catch(() => {});
  startingUp = true;
  try {
    await Promise.race([ready, failed]);
    startingUp = false;
    return { ok: true, ms: Math.round(performance.now() - started) };
  } catch (error) {
    // The failure is the one line to tell: what the closing instance logs after it is not.
    return { ok: false, ms: Math.round(performance.now() - started), error };
  } finally {
    removeObserver();
    clearTimeout(timer);
  }
}

let stdoutGone = false;
const stopListeners = new Set<() => void>();

/**
 * Writes one line to stdout. Once its reader has gone (`pgrealtime events | head -1`), writes are
 * dropped and commands waiting in {@link stopped} stop: the normal end of a pipeline, not an error.
 */
export function print(line: string): void {
  if (!stdoutGone) process.stdout.write(`${line}\n`);
}

/** Writes one line to stderr (progress and notes, never the data). */
export function note(line: string): void {
  process.stderr.write(`${line}\n`);
}

/**
 * Resolves on SIGINT or SIGTERM, or when stdout's reader has gone. A second signal while the command
 * is still closing exits at once.
 */
export function stopped(): Promise<void> {
  return new Promise((resolve) => {
    const stop = () => {
      process.off("SIGINT", stop).off("SIGTERM", stop);
      process.once("SIGINT", () => process.exit(130)).once("SIGTERM", () => process.exit(143));
      stopListeners.delete(stop);
      resolve();
    };
    process.on("SIGINT", stop).on("SIGTERM", stop);
    stopListeners.add(stop);
    if (stdoutGone) stop();
  });
}

function watchStdout(): void {
  process.stdout.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code !== "EPIPE") throw error;
    stdoutGone = true;
    for (const stop of [...stopListeners]) stop();
  });
  // A closed stderr must not crash the process either; there is nowhere left to tell.
  process.stderr.on("error", () => {});
}

/**
 * The message of an expected failure (a RealtimeError, a database or network error), or `null` for
 * anything else, which is a bug worth its stack trace.
 */
function expectedFailure(error: unknown): string | null {
  if (error instanceof RealtimeError || error instanceof Failure)
    return error.message.replace(/^pgrealtime: /, "");
  if (error instanceof AggregateError && error.errors.length > 0) {
    // Node tries each address of "localhost" in turn and fails with all of them.
    const causes = error.errors.map(expectedFailure);
    return causes.every((cause) => cause !== null) ? [...new Set(causes)].join("; ") : null;
  }
  if (!(error instanceof Error)) return null;
  // System errors (ECONNREFUSED, ENOTFOUND, ...) and PostgreSQL's own (SQLSTATE) carry a string code.
  if (typeof (error as NodeJS.ErrnoException).code === "string") return error.message;
  // node-postgres's own, when the server goes away or a connection attempt times out.
  if (/^Connection terminated|^timeout expired|^Query read timeout/.test(error.message)) return error.message;
  return null;
}

/** The one-line cause of a failure, as the CLI prints it. */
export function failureMessage(error: unknown): string {
  return expectedFailure(error) ?? (error instanceof Error ? error.message : String(error));
}

/**
 * Runs a command's body and turns its outcome into an exit code: 0, 1 with `pgrealtime: <cause>` on a
 * runtime failure (a stack trace only for an unexpected error), 2 with the cause and the usage on bad
 * arguments. A TypeError or RangeError from the library is an argument it refused (a type it does not
 * take, a detail too large): bad arguments too.
 */
export async function execute(command: Command, argv: string[]): Promise<number> {
  watchStdout();
  let code: number;
  try {
    code = await command.run(argv);
  } catch (error) {
    code = report(error, command.usage);
  }
  // Every line is out before the process ends (pipes and files are written synchronously on Linux;
  // this covers the rest).
  await new Promise<void>((resolve) => (stdoutGone ? resolve() : process.stdout.write("", () => resolve())));
  return code;
}

/** A TypeError / RangeError the library threw on purpose, not one the engine threw on a bug. */
function isRefusedArgument(error: unknown): boolean {
  if (!(error instanceof TypeError || error instanceof RangeError)) return false;
  return !/^Cannot (read|set) propert|is not (a function|iterable|defined)|Invalid array length/.test(
    error.message,
  );
}

function report(error: unknown, usage: string): number {
  if (error instanceof HelpRequested) {
    print(usage);
    return 0;
  }
  if (error instanceof UsageError || isRefusedArgument(error)) {
    note(`pgrealtime: ${(error as Error).message}\n\n${usage}`);
    return 2;
  }
  const expected = expectedFailure(error);
  note(`pgrealtime: ${expected ?? (error instanceof Error ? error.stack : String(error))}`);
  return 1;
}
