// Argument parsing shared by every command: node:util parseArgs (strict: an unknown option or a missing
// value is refused), the options every command takes, and the checks of values that must be refused
// before anything touches the database (ids, durations, JSON, dates, enumerations).
import { type ParseArgsConfig, parseArgs } from "node:util";
import { parseDuration } from "../duration.js";
import { isEventId, isPlainObject, normalizeUserId, validateType } from "../event.js";
import type { EventStatus, JsonObject, Scope } from "../types.js";

/** Bad arguments: the command prints `pgrealtime: <message>`, then its usage, and exits 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** Thrown by {@link parseCommand} on `--help` / `-h`: the command prints its usage and exits 0. */
export class HelpRequested extends Error {
  override name = "HelpRequested";
}

/** The options of every command, besides its own. */
export const COMMON_OPTIONS = {
  schema: { type: "string" },
  table: { type: "string" },
  help: { type: "boolean", short: "h", default: false },
} as const;

/** The lines of every command's usage that describe {@link COMMON_OPTIONS} and the environment. */
export const COMMON_USAGE = `Common options:
  --schema NAME   the PostgreSQL schema of the tables (default "pgrealtime")
  --table NAME    the events table in that schema (default "events")
  -h, --help      print this help

Reads the database from DATABASE_URL (postgres://user:password@host:5432/database).`;

type Options = NonNullable<ParseArgsConfig["options"]>;
type Config<O extends Options> = {
  args: string[];
  options: O & typeof COMMON_OPTIONS;
  allowPositionals: true;
  strict: true;
};

/** The parsed arguments of a command with options `O` (and the common ones). */
export type Parsed<O extends Options> = ReturnType<typeof parseArgs<Config<O>>>;

/**
 * Parses a command's arguments with its own options and {@link COMMON_OPTIONS}.
 *
 * @param positionals how many positional arguments the command takes, at least and at most, with a
 *   name for the messages; default none.
 * @throws UsageError for an unknown option, a missing value or a wrong number of positionals;
 *   HelpRequested for `--help`.
 */
export function parseCommand<const O extends Options>(
  argv: string[],
  options: O,
  positionals: { name: string; min: number; max: number } = { name: "argument", min: 0, max: 0 },
): Parsed<O> {
  let parsed: Parsed<O>;
  try {
    parsed = parseArgs<Config<O>>({
      args: argv,
      options: { ...options, ...COMMON_OPTIONS },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    throw usageErrorOf(error);
  }
  if ((parsed.values as { help?: boolean }).help) throw new HelpRequested();
  const count = parsed.positionals.length;
  if (count > positionals.max) {
    const extra = parsed.positionals.slice(positionals.max).join(" ");
    throw new UsageError(`unexpected ${positionals.max === 0 ? "argument" : positionals.name} "${extra}"`);
  }
  if (count < positionals.min) throw new UsageError(`missing ${positionals.name}`);
  return parsed;
}

/** A parseArgs error as a UsageError of one line (some of Node's messages span three); others as they are. */
export function usageErrorOf(error: unknown): unknown {
  const code = error instanceof Error ? (error as NodeJS.ErrnoException).code : undefined;
  if (typeof code !== "string" || !code.startsWith("ERR_PARSE_ARGS_")) return error;
  const message = (error as Error).message.replace(/\s*\n\s*/g, " ");
  // For an unknown option, Node's advice after the first sentence (about "--") only confuses here.
  if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") return new UsageError(message.split(/\.\s/)[0] ?? message);
  return new UsageError(message);
}

/**
 * Runs a check of the library on an argument, turning its TypeError / RangeError into a UsageError,
 * its message after `prefix` when the check does not name the option itself.
 */
function checked<T>(prefix: string, check: () => T): T {
  try {
    return check();
  } catch (error) {
    if (error instanceof TypeError || error instanceof RangeError)
      throw new UsageError(prefix + error.message);
    throw error;
  }
}

/** A stored event id (decimal digits, within bigint), or a UsageError naming `option`. */
export function eventId(value: string, option: string): string {
  if (!isEventId(value))
    throw new UsageError(`${option} must be an event id (decimal digits), got "${value}"`);
  return value;
}

/** An event type as publish takes it, or a UsageError. */
export function eventType(value: string, option = "--type"): string {
  return checked(`${option}: `, () => validateType(value));
}

/** A user id, or a UsageError. */
export function userId(value: string, option = "--user"): string {
  return checked("", () => normalizeUserId(value, option));
}

/** A duration like `30d`, `12h`, `90m`, checked as the library checks it; the text is kept. */
export function duration(value: string, option: string): string {
  checked("", () => parseDuration(value, option));
  return value;
}

/** A JSON plain object (`{"taskId": 1}`), or a UsageError naming `option`. */
export function jsonObject(value: string, option: string): JsonObject {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch (error) {
    throw new UsageError(`${option} is not valid JSON (${(error as Error).message})`);
  }
  if (!isPlainObject(parsed)) throw new UsageError(`${option} must be a JSON object, like '{"key": 1}'`);
  return parsed as JsonObject;
}

const ISO_TIME = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}(:?\d{2})?)?)?$/;

/** An ISO 8601 date or time (`2026-01-31`, `2026-01-31T12:00:00Z`), or a UsageError naming `option`. */
export function isoTime(value: string, option: string): Date {
  const time = ISO_TIME.test(value) ? new Date(value) : null;
  if (!time || Number.isNaN(time.getTime())) {
    throw new UsageError(`${option} must be an ISO 8601 time like 2026-01-31 or 2026-01-31T12:00:00Z`);
  }
  return time;
}

/** A whole number between `min` and `max`, or a UsageError naming `option`. */
export function integer(value: string, option: string, min: number, max: number): number {
  const number = /^[0-9]{1,10}$/.test(value) ? Number(value) : Number.NaN;
  if (!(number >= min && number <= max)) {
    throw new UsageError(`${option} must be a whole number from ${min} to ${max}, got "${value}"`);
  }
  return number;
}

/** The scopes of an event, as `--scope` takes them. */
export const SCOPES: readonly Scope[] = ["user", "global", "system"];

/** How far a stored event got, as `--status` takes it. */
export const STATUSES: readonly EventStatus[] = ["new", "dispatched", "sent"];

/** One of `choices`, or a UsageError naming `option` and the choices. */
export function oneOf<const T extends string>(value: string, option: string, choices: readonly T[]): T {
  if (!(choices as readonly string[]).includes(value)) {
    throw new UsageError(`${option} must be one of ${choices.join(", ")}, got "${value}"`);
  }
  return value as T;
}
