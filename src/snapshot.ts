/**
 * A PostgreSQL `pg_snapshot` as the reader needs it: a transaction committed after the snapshot was
 * taken is one that was still running then (`xip`) or had not started (`>= xmax`).
 */
export interface Snapshot {
  /** The text form `xmin:xmax:xip,...`, as PostgreSQL prints and reads it. */
  text: string;
  xmin: string;
  xmax: string;
  xip: string[];
}

const SNAPSHOT = /^([0-9]+):([0-9]+):([0-9,]*)$/;

/**
 * Reads a snapshot's text form.
 *
 * @throws TypeError when `text` is not one.
 */
export function parseSnapshot(text: string): Snapshot {
  const match = SNAPSHOT.exec(text);
  if (!match) throw new TypeError(`not a pg_snapshot: ${JSON.stringify(text)}`);
  return {
    text,
    xmin: match[1] as string,
    xmax: match[2] as string,
    xip: match[3] ? (match[3] as string).split(",") : [],
  };
}

/** Whether a committed transaction had committed when `snapshot` was taken (`pg_visible_in_snapshot`). */
export function committedBefore(txid: string, snapshot: Snapshot): boolean {
  const xid = BigInt(txid);
  if (xid < BigInt(snapshot.xmin)) return true;
  if (xid >= BigInt(snapshot.xmax)) return false;
  return !snapshot.xip.includes(txid);
}

/** Whether `later` was taken before `earlier` by its counters: only a changed history does that. */
export function wentBack(earlier: Snapshot, later: Snapshot): boolean {
  return BigInt(later.xmax) < BigInt(earlier.xmax);
}
