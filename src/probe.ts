import pg from "pg";
import { RealtimeError } from "./errors.js";
import { SESSION_SQL } from "./statements.js";

/** How long a connection attempt may take before it counts as failed (and is retried). */
export const CONNECT_TIMEOUT_MS = 10_000;
/** How long the start-up probe waits for its own notification, once sent. */
export const PROBE_TIMEOUT_MS = 2_000;

/**
 * NOTIFYs `payload` on `channel` from a short-lived session of its own, so the probe depends neither on
 * the app's pool nor on the LISTEN session. Resolves once the NOTIFY has committed.
 *
 * @throws the connection's or the query's error.
 */
export async function sendProbe(
  connection: pg.ClientConfig,
  channel: string,
  payload: string,
): Promise<void> {
  const sender = new pg.Client({
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    ...connection,
    application_name: "pgrealtime probe",
  });
  sender.on("error", () => {});
  try {
    await sender.connect();
    await sender.query(SESSION_SQL.notify, [channel, payload]);
  } finally {
    await sender.end().catch(() => {});
  }
}

/** The probe's own notification did not come back: LISTEN on this connection is useless. */
export function swallowedProbe(): RealtimeError {
  return new RealtimeError(
    "LISTEN_UNAVAILABLE",
    `pgrealtime: the LISTEN connection receives no notifications (a NOTIFY sent from another session did not arrive within ${PROBE_TIMEOUT_MS} ms). A transaction-pooling PgBouncer does this: set listenConnectionString to a direct or session-pooled connection.`,
  );
}
