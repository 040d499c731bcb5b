import type { ActivityLog } from "./activity.js";
import type { Connection } from "./connection.js";
import { newestCursor, parseCursor, rowTag } from "./cursor.js";
import type { Hooks } from "./hooks.js";
import { mayReceive } from "./router.js";
import { namedFrame } from "./sse.js";
import type { Counters } from "./stats.js";
import { type Cursor, newestOf, type ResumePoint, type Store } from "./store.js";
import type { Logger, RealtimeEvent } from "./types.js";

/** Rows per replay query; writes are paced by the reader, so memory stays bounded. */
const PAGE_SIZE = 500;
/** How long a replayed stream keeps its bound when the live path cannot catch up (the database is down). */
const SYNC_TIMEOUT_MS = 30_000;
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
  | "replay-failed"
  | "listener-reconnected"
  | "history-changed"
  | "identity-changed";

export interface ReplayOptions {
  store: Store;
  storage: boolean;
  maxReplay: number;
  /** Milliseconds a reader may take nothing before it is dropped as a slow reader. */
  stallMs: number;
  logger: Logger;
  hooks: Hooks;
  /** The frame of an event for one connection (through `beforeSend`), or `null` to skip it. */
  frameFor(event: RealtimeEvent, rowTag: string, connection: Connection): Uint8Array | null;
  /** Resolves once this process has routed every event committed before the call. */
  sync(): Promise<void>;
  counters: Counters;
  /** Where replayed deliveries are recorded; `null` without storage or with `activity: false`. */
  activity: ActivityLog | null;
}

/**
 * Resumes a stream from the cursor its client sent: every event it may see that it may not have, in id
 * order, each committed before one snapshot taken after the stream was registered for live events;
 * then the live events held meanwhile (minus those just sent), which all committed after that snapshot
 * or were sent already. So no event ever reaches the client before one that committed before it was
 * written, and whatever cursor the client holds covers exactly what it has. When it cannot resume, it
 * sends `event: reset` with the reason and an `id:` line with the cursor to go on from, and goes live.
 *
 * The connection must be holding live events ({@link Connection.hold}) and registered for them.
 */
export async function replay(connection: Connection, token: string, options: ReplayOptions): Promise<void> {
  const { counters } = options;
  counters.replaysTotal++;
  counters.replaysRunning++;
  try {
    const reset = await replayBacklog(connection, token, options);
    if (reset) {
      counters.resets++;
      connection.send(namedFrame("reset", { reason: reset.reason }, reset.cursor));
    }
  } catch (error) {
    // The client is told, rather than left believing it caught up; it keeps its cursor (sent back as
    // the id) so a later reconnect can try again, and reloads its state meanwhile.
    options.logger.error({ err: error, lastEventId: token }, "pgrealtime: replay failed; sent reset");
    counters.resets++;
    connection.send(namedFrame("reset", { reason: "replay-failed" }, parseCursor(token) ? token : undefined));
  } finally {
    counters.replaysRunning--;
    connection.resume();
  }
  if (connection.closed) return;
  // Live events committed before the replay's snapshot may still be on their way through this process;
  // until they have passed, the connection drops them.
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    options.sync(),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, SYNC_TIMEOUT_MS).unref();
    }),
  ]);
  clearTimeout(timer);
  connection.forgetBound();
}

type Reset = { reason: ResetReason; cursor: string };

async function replayBacklog(
  connection: Connection,
  token: string,
  options: ReplayOptions,
): Promise<Reset | null> {
  // An empty id line clears the client's cursor: without storage there is nothing to resume from.
  if (!options.storage) return { reason: "storage-off", cursor: "" };
  const { store } = options;
  const parsed = parseCursor(token);
  const point = await queries.run(() => store.resumePoint(parsed?.id ?? "0"));
  const newest = newestOf(point.max, point.prunedThrough);
  const reset = (reason: ResetReason): Reset => ({
    reason,
    cursor: newestCursor(newest, connection.identityTag),
  });
  if (parsed === null) return reset("malformed-id");
  const judged = judge(parsed, point, newest.id, connection);
  if (typeof judged === "string") return reset(judged);
  connection.bind(point.bound);
  const audience = { userId: connection.userId };
  const size = await queries.run(() => store.backlogSize(judged, point.bound, audience, options.maxReplay));
  if (size > options.maxReplay) return reset("backlog-too-large");
  // A disconnectUser committed before the snapshot must end this stream before any of the events after
  // it goes out: the receiver takes every command committed before this call first.
  await options.sync();
  if (connection.closed) return null;
  const last = BigInt(parsed.id);
  const pages = store.backlog(judged, point.bound, audience, "-1", PAGE_SIZE);
  for (let after = "-1"; ; ) {
    const next = await queries.run(() => pages.next());
    if (next.done) return null;
    // Rows deleted since the replay began may include some this client has not been sent yet.
    const prunedThrough = await queries.run(() => store.prunedThrough());
    if (prunedThrough > last && prunedThrough > BigInt(after)) return reset("pruned");
    for (const row of next.value) {
      const frame = await frameOf(row.event, rowTag(row.createdMicros), connection, options);
      if (frame) {
        if (!(await connection.replay(frame, options.stallMs))) return null;
        options.counters.sent++;
        options.activity?.sent(row.event.id, connection.userId, 1, true);
      }
      after = row.event.id;
    }
  }
}

/**
 * Where a client cursor stands in the database: the cursor to replay from, or why it cannot be used.
 * A token names its row and identity, so a row handed out again (a restored backup) or a cursor earned
 * by another identity (a stream that was anonymous, now signed in) is caught; a bare id is taken as is.
 */
function judge(
  parsed: NonNullable<ReturnType<typeof parseCursor>>,
  point: ResumePoint,
  newest: bigint,
  connection: Connection,
): Cursor | ResetReason {
  const last = BigInt(parsed.id);
  const tagged = parsed.rowTag !== null;
  if (last > newest) return tagged ? "history-changed" : "unknown-id";
  // A deleted event above the cursor may never have reached this client.
  if (last < point.prunedThrough) return "pruned";
  const exact = point.at !== null && point.at.id === parsed.id;
  if (tagged) {
    if (!exact) return last <= point.prunedThrough ? "pruned" : "history-changed";
    if (rowTag((point.at as NonNullable<ResumePoint["at"]>).createdMicros) !== parsed.rowTag)
      return "history-changed";
    // An anonymous stream needs only global events, which every identity got.
    if (parsed.identityTag !== connection.identityTag && connection.userId !== null)
      return "identity-changed";
  }
  // Nothing stored at or below the cursor (ids before the first row were rolled back): all of it is new.
  if (point.min === null || last < point.min) return { id: parsed.id, snapshot: null, txid: null };
  if (point.at === null) return "pruned";
  // A row deleted from a transaction the cursor's snapshot had not seen may be one the client lacks.
  if (point.prunedTxid !== null && point.prunedTxid >= BigInt(point.at.snapshot.xmin)) return "pruned";
  // A missing row inside the range is an identity gap: the nearest row below is older and covers more.
  return { id: parsed.id, snapshot: point.at.snapshot, txid: exact ? point.at.txid : null };
}

/**
 * One replayed row as this connection's frame: through `onReceive` (checked, and routed by the same rule
 * as live events) and `beforeSend`. A row that fails is logged and skipped, not the whole replay.
 */
async function frameOf(
  row: RealtimeEvent,
  tag: string,
  connection: Connection,
  options: ReplayOptions,
): Promise<Uint8Array | null> {
  const event = await options.hooks.receive(row);
  return event && mayReceive(event, connection.userId) ? options.frameFor(event, tag, connection) : null;
}
