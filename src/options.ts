import type { Logger, RealtimeOptions } from "./types.js";

const SCHEMA_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,49}$/;
const BASE_PATH_PATTERN = /^(\/[A-Za-z0-9._~-]+)*$/;

/** Warnings and errors to the console; debug and info dropped. */
export const consoleLogger: Logger = {
  debug() {},
  info() {},
  warn: (...args: unknown[]) => console.warn(...args),
  error: (...args: unknown[]) => console.error(...args),
};

const KNOWN_OPTIONS = new Set([
  "connectionString",
  "pool",
  "listenConnectionString",
  "authenticate",
  "allowAnonymous",
  "storage",
  "schema",
  "basePath",
  "heartbeatMs",
  "retryMs",
  "maxBufferedBytes",
  "maxPayloadBytes",
  "maxReplay",
  "maxConnections",
  "maxConnectionsPerUser",
  "onReceive",
  "beforeSend",
  "logger",
]);

/** The defaults, in one place; the README's option table mirrors them. */
export const DEFAULTS = {
  storage: true,
  schema: "pgrealtime",
  basePath: "/realtime",
  heartbeatMs: 15_000,
  retryMs: 3_000,
  maxBufferedBytes: 1024 * 1024,
  maxPayloadBytes: 1024 * 1024,
  maxReplay: 10_000,
  maxConnections: 10_000,
  maxConnectionsPerUser: 20,
  allowAnonymous: true,
} as const;

export type ResolvedOptions = Required<
  Pick<
    RealtimeOptions,
    | "storage"
    | "schema"
    | "basePath"
    | "heartbeatMs"
    | "retryMs"
    | "maxBufferedBytes"
    | "maxPayloadBytes"
    | "maxReplay"
    | "maxConnections"
    | "maxConnectionsPerUser"
    | "allowAnonymous"
    | "logger"
  >
>;

/**
 * Checks every option once, at creation, and fills in the defaults.
 *
 * @throws TypeError for a missing database, a wrong type or a malformed schema or base path.
 * @throws RangeError for a number out of its range.
 */
export function resolveOptions(options: RealtimeOptions): ResolvedOptions {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(
      "createRealtime takes an options object, e.g. { connectionString: process.env.DATABASE_URL }",
    );
  }
  const unknown = Object.keys(options).filter((key) => !KNOWN_OPTIONS.has(key));
  if (unknown.length > 0) {
    throw new TypeError(
      `createRealtime: unknown option ${unknown.map((k) => `"${k}"`).join(", ")}; the options are ${[...KNOWN_OPTIONS].join(", ")}`,
    );
  }
  if (options.connectionString === undefined && options.pool === undefined) {
    throw new TypeError(
      "createRealtime needs a database: pass connectionString (e.g. process.env.DATABASE_URL) or pool",
    );
  }
  for (const key of ["connectionString", "listenConnectionString"] as const) {
    const value = options[key];
    if (value !== undefined && (typeof value !== "string" || value === "")) {
      throw new TypeError(`${key} must be a non-empty string, e.g. "postgres://user@host:5432/db"`);
    }
  }
  const pool = options.pool as unknown;
  if (
    pool !== undefined &&
    (typeof (pool as { query?: unknown } | null)?.query !== "function" ||
      typeof (pool as { connect?: unknown }).connect !== "function")
  ) {
    throw new TypeError("pool must be a pg.Pool (with query() and connect())");
  }
  const logger = options.logger as unknown;
  if (
    logger !== undefined &&
    !["debug", "info", "warn", "error"].every(
      (level) => typeof (logger as Record<string, unknown> | null)?.[level] === "function",
    )
  ) {
    throw new TypeError("logger must have debug, info, warn and error methods (a pino logger does)");
  }
  for (const key of ["authenticate", "onReceive", "beforeSend"] as const) {
    if (options[key] !== undefined && typeof options[key] !== "function") {
      throw new TypeError(`${key} must be a function`);
    }
  }
  const schema = options.schema ?? DEFAULTS.schema;
  if (typeof schema !== "string" || !SCHEMA_PATTERN.test(schema)) {
    throw new TypeError(
      `schema must be a letter or "_" followed by up to 49 letters, digits or "_", got ${JSON.stringify(schema)}`,
    );
  }
  const basePath = options.basePath ?? DEFAULTS.basePath;
  if (typeof basePath !== "string" || !BASE_PATH_PATTERN.test(basePath)) {
    throw new TypeError(
      `basePath must look like "/realtime" (segments of letters, digits, ".", "_", "~" or "-"; no trailing slash), got ${JSON.stringify(basePath)}`,
    );
  }
  return {
    storage: flag(options.storage, "storage", DEFAULTS.storage),
    allowAnonymous: flag(options.allowAnonymous, "allowAnonymous", DEFAULTS.allowAnonymous),
    schema,
    basePath,
    heartbeatMs: integer(options.heartbeatMs, "heartbeatMs", DEFAULTS.heartbeatMs, 10, 2 ** 31 - 1),
    retryMs: integer(options.retryMs, "retryMs", DEFAULTS.retryMs, 0, 2 ** 31 - 1),
    maxBufferedBytes: integer(
      options.maxBufferedBytes,
      "maxBufferedBytes",
      DEFAULTS.maxBufferedBytes,
      1024,
      2 ** 31,
    ),
    maxPayloadBytes: integer(
      options.maxPayloadBytes,
      "maxPayloadBytes",
      DEFAULTS.maxPayloadBytes,
      2,
      2 ** 30,
    ),
    maxReplay: integer(options.maxReplay, "maxReplay", DEFAULTS.maxReplay, 0, 10_000_000),
    maxConnections: integer(options.maxConnections, "maxConnections", DEFAULTS.maxConnections, 1, 10_000_000),
    maxConnectionsPerUser: integer(
      options.maxConnectionsPerUser,
      "maxConnectionsPerUser",
      DEFAULTS.maxConnectionsPerUser,
      1,
      10_000_000,
    ),
    logger: options.logger ?? consoleLogger,
  };
}

function flag(value: unknown, name: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== "boolean") throw new TypeError(`${name} must be true or false`);
  return value;
}

function integer(value: unknown, name: string, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value))
    throw new TypeError(`${name} must be an integer`);
  if (value < min || value > max)
    throw new RangeError(`${name} must be between ${min} and ${max}, got ${value}`);
  return value;
}
