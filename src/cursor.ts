// The cursor a client carries: the SSE `id:` line of the last event it got, sent back as Last-Event-ID.
// Besides the event id it names the row (so a database restored from a backup, whose ids were handed out
// again, is told apart from the history the client saw) and the identity the stream had (so a cursor
// earned anonymously is not taken for one earned by a signed-in user, who may see more).
import { createHash } from "node:crypto";
import { isEventId } from "./event.js";

const TOKEN = /^([0-9]{1,19})\.([0-9a-z]{1,5})\.([0-9a-z]{1,4})$/;
const ROW_TAG_MODULUS = 36n ** 5n;
/** The identity tag of an anonymous stream. */
const ANONYMOUS_TAG = "0";

/** A cursor as a client sent it back. */
export interface ClientCursor {
  /** The event id (decimal). */
  id: string;
  /** The row's tag, or `null` for a bare id (a page-rendered cursor, `currentEventId()`). */
  rowTag: string | null;
  /** The tag of the identity that earned it, or `null` for a bare id. */
  identityTag: string | null;
}

/**
 * The tag of a row: the low base-36 digits of its creation time in microseconds. Rows handed the same
 * id again (a restored backup, a failover to a replica that lacked them) were created at another time.
 */
export function rowTag(createdMicros: string): string {
  return (BigInt(createdMicros) % ROW_TAG_MODULUS).toString(36);
}

/** The identity tag of a stream: a short hash of its user id, {@link ANONYMOUS_TAG} when anonymous. */
export function identityTag(userId: string | null): string {
  if (userId === null) return ANONYMOUS_TAG;
  const hash = createHash("sha256").update(userId).digest().readUInt32BE(0);
  // Four base-36 digits, never "0": an anonymous tag is never a user's.
  return ((hash % (36 ** 4 - 1)) + 1).toString(36);
}

/** The `id:` line value of an event: what the client sends back to resume. */
export function cursorToken(id: string, row: string, identity: string): string {
  return `${id}.${row}.${identity}`;
}

/**
 * The cursor to go on from after a reset, for a stream of `identity`: the newest row's token, the bare
 * pruning mark when every row up to it is gone (`createdMicros: null`).
 */
export function newestCursor(newest: { id: bigint; createdMicros: string | null }, identity: string): string {
  const id = newest.id.toString();
  return newest.createdMicros === null ? id : cursorToken(id, rowTag(newest.createdMicros), identity);
}

/** Reads a cursor sent by a client; `null` when it is neither a token nor a bare event id. */
export function parseCursor(value: string): ClientCursor | null {
  if (isEventId(value)) return { id: value, rowTag: null, identityTag: null };
  const match = TOKEN.exec(value);
  if (!match || !isEventId(match[1])) return null;
  return { id: match[1], rowTag: match[2] as string, identityTag: match[3] as string };
}
