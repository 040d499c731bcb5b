/**
 * The codes a {@link RealtimeError} carries in `error.code`.
 *
 * - `CLOSED`: the realtime instance was closed; `publish` and friends reject with it.
 * - `MIGRATION_REQUIRED`: the events table (or its schema) does not exist, or migrations are pending; run
 *   `npx pgrealtime migrate`.
 * - `SCHEMA_TOO_NEW`: a newer version of pgrealtime migrated the schema; upgrade pgrealtime (or use another
 *   schema).
 * - `LISTEN_UNAVAILABLE`: the LISTEN connection cannot receive notifications (hot standby, transaction pooler).
 * - `CLIENT_SCRIPT_MISSING`: the browser client bundle is missing from `dist/` (the package was not built).
 * - `NOT_FOUND`: `replay` was given an id that is not stored (nothing was replayed).
 * - `STORAGE_OFF`: a stored-event method (`events.*`, `replay`, `prune`, `status`) with `storage: false`.
 */
export type RealtimeErrorCode =
  | "CLOSED"
  | "MIGRATION_REQUIRED"
  | "SCHEMA_TOO_NEW"
  | "LISTEN_UNAVAILABLE"
  | "CLIENT_SCRIPT_MISSING"
  | "NOT_FOUND"
  | "STORAGE_OFF";

/**
 * The library's own errors. Bad arguments are plain `TypeError` / `RangeError` instead.
 *
 * @example
 * try { await realtime.publish(input) } catch (e) {
 *   if (e instanceof RealtimeError && e.code === "MIGRATION_REQUIRED") console.error(e.message);
 * }
 */
export class RealtimeError extends Error {
  override name = "RealtimeError";
  readonly code: RealtimeErrorCode;

  constructor(code: RealtimeErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
