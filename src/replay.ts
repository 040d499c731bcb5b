import type { Pool } from "pg";
import { copyEvent } from "./router.js";
import { type Connection, namedFrame } from "./sse.js";
import type { Audience, Cursor, Store } from "./store.js";
import type { Logger, RealtimeEvent } from "./types.js";

/** Rows per replay query; writes are paced by the reader, so memory stays bounded. */
const PAGE_SIZE = 500;
const MAX_EVENT_ID = 2n ** 63n - 1n;

/** Why a stream could not resume, as sent in `event: reset`. */
export type ResetReason = "storage-off" | "malformed-id" | "unknown-id" | "pruned" | "backlog-too-large";

export interface ReplayOptions {
  store: Store;
  pool: Pool;
  storage: boolean;
  maxReplay: number;
  logger: Logger;
  onReceive: ((event: RealtimeEvent) => RealtimeEvent | null | Promise<RealtimeEvent | null>) | undefined;
  /** The frame of an event for one connection (through `beforeSend`), or `null` to skip it. */
  frameFor(event: RealtimeEvent, connection: Connection): Uint8Array | null;
}

/**
 * Resumes a stream from the last id its client saw: sends every event it may see that may have
 * committed after that one, in id order, then lets the live events held meanwhile through (minus
 * those just sent). When it cannot, it sends `event: reset` with the reason and goes live.
 * The connection must be holding live events ({@link Connection.hold}) and registered for them.
 */
export async function replay(
  connection: Connection,
  lastEventId: string,
  options: ReplayOptions,
): Promise<void> {
  try {
    const reason = await replayBacklog(connection, lastEventId, options);
    if (reason) connection.send(namedFrame("reset", { reason }));
  } catch (error) {
    // The client is told, rather than left believing it caught up; it reloads its state.
    options.logger.error({ err: error, lastEventId }, "pgrealtime: replay failed; sent reset");
    connection.send(namedFrame("reset", { reason: "replay-failed" }));
  } finally {
    connection.resume();
  }
}

async function replayBacklog(
  connection: Connection,
  lastEventId: string,
  options: ReplayOptions,
): Promise<ResetReason | null> {
  if (!options.storage) return "storage-off";
  // Parsed and range-checked here, so SQL only ever sees a valid bigint.
  if (!/^[0-9]{1,19}$/.test(lastEventId) || BigInt(lastEventId) > MAX_EVENT_ID) return "malformed-id";
  const last = BigInt(lastEventId);
  const { store, pool } = options;
  const audience: Audience = { userId: connection.userId };
  const client = await pool.connect();
  try {
    // One snapshot for every page; what commits later reaches the connection live.
    await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    const bounds = await store.bounds(client);
    let cursor: Cursor | null;
    if (!bounds) {
      if (last !== 0n) return "unknown-id";
      cursor = { id: "0", snapshot: null };
    } else if (last > bounds.max) {
      return "unknown-id";
    } else if (last < bounds.min) {
      // Id 0, or just below the first row, means "from the beginning"; below that, rows are gone.
      if (last + 1n < bounds.min) return "pruned";
      cursor = { id: lastEventId, snapshot: null };
    } else {
      cursor = await store.cursorAt(client, last);
      if (!cursor) return "pruned";
    }
    if ((await store.backlogSize(client, cursor, audience, options.maxReplay)) > options.maxReplay) {
      return "backlog-too-large";
    }
    let after = "-1";
    for (;;) {
      const page = await store.backlogPage(client, cursor, audience, after, PAGE_SIZE);
      for (const row of page) {
        if (connection.closed) return null;
        const event = options.onReceive ? await receive(row, options) : row;
        const frame = event && options.frameFor(event, connection);
        if (frame) await connection.replay(row.id, frame);
      }
      const lastRow = page.at(-1);
      if (!lastRow || page.length < PAGE_SIZE) break;
      after = lastRow.id;
    }
    await client.query("COMMIT");
    return null;
  } finally {
    // A returned reset or an error leaves the read-only transaction open: end it before reuse.
    await client.query("ROLLBACK").catch(() => {});
    client.release();
  }
}

async function receive(event: RealtimeEvent, options: ReplayOptions): Promise<RealtimeEvent | null> {
  try {
    return await (options.onReceive as NonNullable<ReplayOptions["onReceive"]>)(copyEvent(event));
  } catch (error) {
    options.logger.error({ err: error, eventId: event.id }, "pgrealtime: onReceive threw; event dropped");
    return null;
  }
}
