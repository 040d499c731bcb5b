import type pg from "pg";
import { SESSION_SQL } from "./statements.js";

/** The liveness interval is never shortened below this, however short the server's idle timeout. */
const LIVENESS_FLOOR_MS = 50;

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, min: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Parses a time setting as PostgreSQL shows it (`"0"`, `"1500ms"`, `"2s"`, `"5min"`, `"1h"`, `"1d"`; no
 * unit means milliseconds) into milliseconds, or `undefined` when it is not of that form.
 */
export function parsePgDuration(text: string): number | undefined {
  const match = /^(\d+)\s*(ms|s|min|h|d)?$/.exec(text.trim());
  if (!match) return undefined;
  return Number(match[1]) * (UNIT_MS[match[2] ?? "ms"] as number);
}

/**
 * This session's `idle_session_timeout` in ms, 0 when off or unknown to the server (before PostgreSQL 14).
 * `current_setting(…, true)` rather than `SHOW`, which fails on servers that do not know the setting.
 */
export async function idleSessionTimeoutMs(client: pg.Client): Promise<number> {
  const { rows } = await client.query<{ value: string | null }>(SESSION_SQL.idleSessionTimeout);
  return parsePgDuration(rows[0]?.value ?? "0") ?? 0;
}

/**
 * How often (ms) to query a session so that the server's idle timeout never ends it: `heartbeatMs`, or half
 * the timeout when that is shorter (never below 50 ms). `idleTimeoutMs` 0 means no timeout.
 */
export function livenessInterval(heartbeatMs: number, idleTimeoutMs: number): number {
  if (idleTimeoutMs <= 0) return heartbeatMs;
  return Math.min(heartbeatMs, Math.max(LIVENESS_FLOOR_MS, Math.floor(idleTimeoutMs / 2)));
}

/**
 * Queries `client` every `intervalMs` and calls `onUnresponsive` once a query has gone unanswered for
 * `toleranceMs` (at least one interval): a half-open socket sends no error, only silence. A query is
 * never sent while the previous one is pending. Returns the function that stops it; the timer is unref'd.
 */
export function startLiveness(
  client: pg.Client,
  intervalMs: number,
  toleranceMs: number,
  onUnresponsive: (error: Error) => void,
): () => void {
  // Counted in ticks, not clock readings, so that an interval that fires a little early still counts.
  const ticksAllowed = Math.max(1, Math.ceil(toleranceMs / intervalMs));
  let pendingTicks: number | undefined;
  const timer = setInterval(() => {
    if (pendingTicks !== undefined) {
      pendingTicks++;
      if (pendingTicks < ticksAllowed) return;
      clearInterval(timer);
      onUnresponsive(new Error(`LISTEN connection unresponsive for ${toleranceMs} ms`));
      return;
    }
    pendingTicks = 0;
    client.query(SESSION_SQL.liveness).then(
      () => {
        pendingTicks = undefined;
      },
      // A failed query means a failed connection, which reports itself through the client's events.
      () => {},
    );
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
