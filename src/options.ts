import { parseDuration } from "./duration.js";
import type { Logger, RealtimeOptions } from "./types.js";

const SCHEMA_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,49}$/;
const TABLE_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,29}$/;
const TAKEN_TABLE_NAMES: ReadonlySet<string> = new Set([
  "migrations",
  "state",
  "controls",
  "activity",
  "processes",
]);
const BASE_PATH_PATTERN = /^(\/[A-Za-z0-9._~-]+)*$/;
const MIN_SECRET_BYTES = 32;

/** Warnings and errors to the console; debug and info dropped. */
const consoleLogger: Logger = {
  debug() {},
  info() {},
  warn: (...args: unknown[]) => console.warn(...args),
  error: (...args: unknown[]) => console.error(...args),
};

type Check = (value: unknown, name: string) => void;
const int =
  (min: number, max: number): Check =>
  (value, name) => {
    if (typeof value !== "number" || !Number.isInteger(value))
      throw new TypeError(`${name} must be an integer`);
    if (value < min || value > max)
      throw new RangeError(`${name} must be between ${min} and ${max}, got ${value}`);
  };
const bool: Check = (value, name) => {
  if (typeof value !== "boolean") throw new TypeError(`${name} must be true or false`);
};
const fn: Check = (value, name) => {
  if (typeof value !== "function") throw new TypeError(`${name} must be a function`);
};
const syncFn: Check = (value, name) => {
  fn(value, name);
  if ((value as () => unknown).constructor.name === "AsyncFunction") {
    throw new TypeError(
      `${name} must be synchronous (it runs per connection on the send path); do async work in onReceive`,
    );
  }
};
const url: Check = (value, name) => {
  if (typeof value !== "string" || value === "") {
    throw new TypeError(`${name} must be a non-empty string, e.g. "postgres://user@host:5432/db"`);
  }
};
const matching =
  (pattern: RegExp, hint: string): Check =>
  (value, name) => {
    if (typeof value !== "string" || !pattern.test(value)) {
      throw new TypeError(`${name} must be ${hint}, got ${JSON.stringify(value)}`);
    }
  };
const pool: Check = (value) => {
  const candidate = value as { query?: unknown; connect?: unknown } | null;
  if (typeof candidate?.query !== "function" || typeof candidate.connect !== "function") {
    throw new TypeError("pool must be a pg.Pool (with query() and connect())");
  }
};
const logger: Check = (value) => {
  if (
    !["debug", "info", "warn", "error"].every(
      (level) => typeof (value as Record<string, unknown> | null)?.[level] === "function",
    )
  ) {
    throw new TypeError("logger must have debug, info, warn and error methods (a pino logger does)");
  }
};
const secret: Check = (value, name) => {
  if (typeof value !== "string" || Buffer.byteLength(value) < MIN_SECRET_BYTES) {
    throw new TypeError(
      `${name} must be a string of at least ${MIN_SECRET_BYTES} bytes (e.g. crypto.randomBytes(32).toString("base64url")), the same in every process`,
    );
  }
};

const retention: Check = (value, name) => {
  if (value === false) return;
  parseDuration(value, name);
};

/**
 * Every option once: its check and its default (`undefined`: none). The README's option table
 * mirrors this; `RealtimeOptions` documents each.
 */
const OPTIONS = {
  connectionString: { check: url, default: undefined },
  pool: { check: pool, default: undefined },
  listenConnectionString: { check: url, default: undefined },
  authenticate: { check: fn, default: undefined },
  allowAnonymous: { check: bool, default: true },
  storage: { check: bool, default: true },
  schema: {
    check: matching(SCHEMA_PATTERN, 'a letter or "_" followed by up to 49 letters, digits or "_"'),
    default: "pgrealtime",
  },
  basePath: {
    check: matching(
      BASE_PATH_PATTERN,
      'like "/realtime" (segments of letters, digits, ".", "_", "~" or "-"; no trailing slash)',
    ),
    default: "/realtime",
  },
  heartbeatMs: { check: int(10, 2 ** 31 - 1), default: 15_000 },
  retryMs: { check: int(0, 2 ** 31 - 1), default: 3_000 },
  maxBufferedBytes: { check: int(1024, 2 ** 31), default: 1024 * 1024 },
  maxPayloadBytes: { check: int(2, 2 ** 30), default: 1024 * 1024 },
  maxReplay: { check: int(0, 10_000_000), default: 10_000 },
  maxConnections: { check: int(1, 10_000_000), default: 10_000 },
  maxConnectionsPerUser: { check: int(1, 10_000_000), default: 20 },
  hookTimeoutMs: { check: int(1, 2 ** 31 - 1), default: 5_000 },
  secret: { check: secret, default: undefined },
  onReceive: { check: fn, default: undefined },
  beforeSend: { check: syncFn, default: undefined },
  table: {
    check: (value, name) => {
      matching(TABLE_PATTERN, 'a letter or "_" followed by up to 29 letters, digits or "_"')(value, name);
      // Beside the default installation, these names are its own tables.
      if (TAKEN_TABLE_NAMES.has(value as string)) {
        throw new TypeError(
          `${name} "${value}" is the name of one of pgrealtime's own tables; choose another`,
        );
      }
    },
    default: "events",
  },
  activity: { check: bool, default: true },
  retention: { check: retention, default: false },
  logger: { check: logger, default: consoleLogger },
} as const satisfies Record<keyof RealtimeOptions, { check: Check; default: unknown }>;

type Defaulted = {
  [K in keyof typeof OPTIONS as (typeof OPTIONS)[K]["default"] extends undefined ? never : K]-?: NonNullable<
    RealtimeOptions[K]
  >;
};

/** The options with their defaults filled in. */
export type ResolvedOptions = Omit<RealtimeOptions, keyof Defaulted> & Defaulted;

/**
 * Checks every option once, at creation, and fills in the defaults.
 *
 * @throws TypeError for an unknown option, a missing database, a wrong type or a malformed value.
 * @throws RangeError for a number out of its range.
 */
export function resolveOptions(options: RealtimeOptions): ResolvedOptions {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(
      "createRealtime takes an options object, e.g. { connectionString: process.env.DATABASE_URL }",
    );
  }
  const known = Object.keys(OPTIONS);
  const unknown = Object.keys(options).filter((key) => !known.includes(key));
  if (unknown.length > 0) {
    throw new TypeError(
      `createRealtime: unknown option ${unknown.map((k) => `"${k}"`).join(", ")}; the options are ${known.join(", ")}`,
    );
  }
  if (options.connectionString === undefined && options.pool === undefined) {
    throw new TypeError(
      "createRealtime needs a database: pass connectionString (e.g. process.env.DATABASE_URL) or pool",
    );
  }
  if (options.storage === false && options.retention !== undefined && options.retention !== false) {
    throw new TypeError(
      "retention deletes stored events, and this instance has storage: false; drop one of them",
    );
  }
  const resolved: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(OPTIONS)) {
    const value = (options as Record<string, unknown>)[name];
    if (value === undefined) {
      resolved[name] = spec.default;
      continue;
    }
    spec.check(value, name);
    resolved[name] = value;
  }
  return resolved as ResolvedOptions;
}
