import type { Pool } from "pg";
import { isEventId } from "./publish.js";
import { mayReceive, receive } from "./router.js";
import { type Connection, namedFrame } from "./sse.js";
import type { Audience, Cursor, Store } from "./store.js";
import type { Logger, RealtimeEvent } from "./types.js";

/** Rows per replay query; writes are paced by the reader, so memory stays bounded. */
const PAGE_SIZE = 500;
/**
 * Replay queries in flight at once, per process: a reconnect storm of many resuming clients queues here
 * instead of taking every pooled connection from the application's own queries.
 */
const QUERY_SLOTS = 2;

/** A counting semaphore: at most `slots` tasks run at once, the rest wait in order. */
class Slots {
  private free: number;
  private readonly waiting: Array<() => void> = [];

  constructor(slots: number) {
    this.free = slots;
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    }
  }
}

const queries = new Slots(QUERY_SLOTS);

/** Why a stream could not resume, as sent in `event: reset`. */
export type ResetReason =
  | "storage-off"
  | "malformed-id"
  | "unknown-id"
  | "pruned"
  | "backlog-too-large"
  | "replay-failed";

export interface ReplayOptions {
  store: Store;
  pool: Pool;
  storage: boolean;
  maxReplay: number;
  /** Milliseconds a reader may take nothing before it is dropped as a slow reader. */
  stallMs: number;
  logger: Logger;
  onReceive: ((event: RealtimeEvent) => RealtimeEvent | null | Promise<RealtimeEvent | null>) | undefined;
  /** The frame of an event for one connection (through `beforeSend`), or `null` to skip it. */
  frameFor(event: RealtimeEvent, connection: Connection): Uint8Array | null;
  /** Resolves once this process has routed every notification committed before the call. */
  sync(): Promise<void>;
}

/**
 * Resumes a stream from the last id its client saw: sends every event it may see that may have
 * committed after that one, in id order, then lets the live events held meanwhile through (minus
 * those just sent). When it cannot, it sends `event: reset` with the reason, and an `id:` line with
 * the cursor to go on from, and goes live.
 *
 * The pages are separate queries, so a stalled reader holds no database connection: an event that
 * commits meanwhile shows up in a later page, live, or both, and the connection drops the repeat.
 * The connection must be holding live events ({@link Connection.hold}) and registered for them.
 */
export async function replay(
  connection: Connection,
  lastEventId: string,
  options: ReplayOptions,
): Promise<void> {
  try {
    const reset = await replayBacklog(connection, lastEventId, options);
    if (reset) connection.send(namedFrame("reset", { reason: reset.reason }, reset.cursor));
  } catch (error) {
    // The client is told, rather than left believing it caught up; it keeps its cursor (sent back as
    // the id) so a later reconnect can try again, and reloads its state meanwhile.
    options.logger.error({ err: error, lastEventId }, "pgrealtime: replay failed; sent reset");
    const keep = isEventId(lastEventId) ? lastEventId : undefined;
    connection.send(namedFrame("reset", { reason: "replay-failed" }, keep));
  } finally {
    connection.resume();
  }
  // Notifications of replayed events may still be on their way to this process; until they have
  // passed, the connection keeps the replayed ids to drop them.
  if (!connection.closed) void options.sync().then(() => connection.forgetReplayed());
}

async function replayBacklog(
  connection: Connection,
  lastEventId: string,
  options: ReplayOptions,
): Promise<{ reason: ResetReason; cursor: string } | null> {
  // An empty id line clears the client's cursor: without storage there is nothing to resume from.
  if (!options.storage) return { reason: "storage-off", cursor: "" };
  const { store, pool } = options;
  const bounds = await queries.run(() => store.bounds(pool));
  const newest = bounds.max !== null && bounds.max > bounds.prunedThrough ? bounds.max : bounds.prunedThrough;
  const reset = (reason: ResetReason) => ({ reason, cursor: newest.toString() });
  // Parsed and range-checked here, so SQL only ever sees a valid bigint.
  if (!isEventId(lastEventId)) return reset("malformed-id");
  const last = BigInt(lastEventId);
  if (last > newest) return reset("unknown-id");
  // A deleted event above the cursor may never have reached this client.
  if (last < bounds.prunedThrough) return reset("pruned");
  let cursor: Cursor | null;
  if (bounds.min === null || last < bounds.min) {
    // Nothing stored at or below the cursor (ids before the first row were rolled back): all of it is new.
    cursor = { id: lastEventId, snapshot: null, txid: null };
  } else {
    cursor = await queries.run(() => store.cursorAt(pool, last));
    if (!cursor) return reset("pruned");
  }
  const audience: Audience = { userId: connection.userId };
  if (
    (await queries.run(() => store.backlogSize(pool, cursor, audience, options.maxReplay))) >
    options.maxReplay
  ) {
    return reset("backlog-too-large");
  }
  let after = "-1";
  for (;;) {
    const page = await queries.run(() => store.backlogPage(pool, cursor, audience, after, PAGE_SIZE));
    // Rows deleted since the replay began may include some this client has not been sent yet.
    const prunedThrough = await queries.run(() => store.prunedThrough(pool));
    if (prunedThrough > last && prunedThrough > BigInt(after)) return reset("pruned");
    for (const row of page) {
      const frame = await frameOf(row, connection, options);
      if (frame && !(await connection.replay(row.id, frame, options.stallMs))) return null;
    }
    const lastRow = page.at(-1);
    if (!lastRow || page.length < PAGE_SIZE) return null;
    after = lastRow.id;
  }
}

/**
 * One replayed row as this connection's frame: through `onReceive` (checked, and routed by the same rule
 * as live events) and `beforeSend`. A row that fails is logged and skipped, not the whole replay.
 */
async function frameOf(
  row: RealtimeEvent,
  connection: Connection,
  options: ReplayOptions,
): Promise<Uint8Array | null> {
  try {
    const event = options.onReceive ? await receive(row, options.onReceive, options.logger) : row;
    return event && mayReceive(event, connection.userId) ? options.frameFor(event, connection) : null;
  } catch (error) {
    options.logger.error(
      { err: error, eventId: row.id },
      "pgrealtime: a replayed event could not be sent; skipped",
    );
    return null;
  }
}
