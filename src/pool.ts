// The instance's database connections: the pool it publishes and reads with (its own or the app's), and
// the settings of the dedicated LISTEN session.
import pg from "pg";
import type { Logger, RealtimeOptions } from "./types.js";

type PoolWithOptions = pg.Pool & { options: pg.PoolConfig };

/** The app's pool, or one of our own from `connectionString`; `owned` says whether `close()` ends it. */
export function openPool(options: RealtimeOptions, logger: Logger): { pool: pg.Pool; owned: boolean } {
  if (options.pool) return { pool: options.pool, owned: false };
  const pool = new pg.Pool({ connectionString: options.connectionString });
  // An idle pooled client losing its server must not crash the process; the pool replaces it. One that
  // the server ended for idling (57P05, idle_session_timeout) is expected, not worth a warning.
  pool.on("error", (error) => {
    const expected = (error as { code?: string }).code === "57P05";
    logger[expected ? "debug" : "warn"]({ err: error }, "pgrealtime: idle pool connection failed");
  });
  return { pool, owned: true };
}

/**
 * Lets our own pool's idle connections go before the server's `idle_session_timeout` ends them, never
 * under a query.
 */
export function idleBefore(pool: pg.Pool, timeoutMs: number): void {
  const config = (pool as PoolWithOptions).options;
  if ((config.idleTimeoutMillis ?? 10_000) > timeoutMs / 2) {
    config.idleTimeoutMillis = Math.max(1, Math.floor(timeoutMs / 2));
  }
}

/** Where the LISTEN session connects: `listenConnectionString`, else `connectionString`, else the pool's settings. */
export function listenConnectionConfig(options: RealtimeOptions): pg.ClientConfig {
  const connectionString = options.listenConnectionString ?? options.connectionString;
  if (connectionString) return { connectionString };
  // The app's pool: reuse its connection settings (not its connections) for a dedicated session.
  return { ...(options.pool as PoolWithOptions).options };
}
