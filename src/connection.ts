import { identityTag } from "./cursor.js";
import { committedBefore, type Snapshot } from "./snapshot.js";
import { PING_FRAME } from "./sse.js";

/** Where a stream's bytes go: a Web ReadableStream or a Node ServerResponse. */
export interface Sink {
  /** Queues bytes for the client. Never throws; a closed sink drops them. */
  write(chunk: Uint8Array): void;
  /** Bytes written but not yet handed to the socket. */
  readonly bufferedBytes: number;
  /** Resolves when everything written so far was handed to the socket, or the stream ended. */
  drained(): Promise<void>;
  /** Ends the stream (idempotent). */
  close(): void;
  /** Drops the stream and whatever is still queued for it, for a client that stopped reading. */
  abort(): void;
}

/**
 * One open event stream and what routing needs to know about it. While it replays a backlog, live
 * events are held back and sent after it. The replay covers everything the client lacks that committed
 * before its snapshot (the `bound`), so until the live path has passed that snapshot (`forgetBound`),
 * a live event whose transaction committed before it is dropped: the client has it, or the replay
 * sent it. Live events that committed later go out after the replay, in their order: no gap, no
 * duplicate, and nothing ahead of an event that committed before it.
 */
export class Connection {
  lastWriteAt = Date.now();
  closed = false;
  /** The tag of this stream's identity in the cursors it hands out. */
  readonly identityTag: string;
  private held: Array<{ frame: Uint8Array; txid: string | null; eventId: string }> | null = null;
  private heldBytes = 0;
  private bound: Snapshot | null = null;
  private wakeReplay: (() => void) | undefined;

  constructor(
    /** The user id as a decimal string, or `null` when anonymous. */
    readonly userId: string | null,
    private readonly sink: Sink,
    private readonly maxBufferedBytes: number,
    private readonly onOverflow: (connection: Connection) => void,
    /** Called for each held live event sent once the replay ended (for counters and activity). */
    private readonly onReleased: (eventId: string) => void = () => {},
  ) {
    this.identityTag = identityTag(userId);
  }

  /** Bytes written and not yet taken by the client. */
  get bufferedBytes(): number {
    return this.sink.bufferedBytes;
  }

  /**
   * Writes a frame. A reader that has not taken the last `maxBufferedBytes` is disconnected instead
   * (it resumes from its last id): never silently skipped, and one large frame always fits.
   */
  send(frame: Uint8Array): void {
    if (this.closed) return;
    if (this.sink.bufferedBytes > this.maxBufferedBytes) {
      this.onOverflow(this);
      return;
    }
    this.sink.write(frame);
    this.lastWriteAt = Date.now();
  }

  /**
   * Sends a live event now, or holds it while a replay runs; drops one whose transaction (`txid`,
   * `null` without storage) committed before the replay's snapshot.
   *
   * @returns whether the frame was sent now (false: held, covered by the replay, or the stream is gone;
   *   a held one is reported through `onReleased` when it goes out).
   */
  deliver(frame: Uint8Array, txid: string | null, eventId: string): boolean {
    if (this.covered(txid) || this.closed) return false;
    if (!this.held) {
      this.send(frame);
      return true;
    }
    // Live events pile up behind a replay only as far as the write buffer may; past that the client
    // is dropped and resumes from its last id, like any slow reader.
    if (this.heldBytes > this.maxBufferedBytes) {
      this.onOverflow(this);
      return false;
    }
    this.held.push({ frame, txid, eventId });
    this.heldBytes += frame.byteLength;
    return false;
  }

  /** Starts holding live events back for a replay. */
  hold(): void {
    this.held = [];
  }

  /** The replay's snapshot: from now until {@link forgetBound}, live events committed before it are dropped. */
  bind(snapshot: Snapshot): void {
    this.bound = snapshot;
  }

  /**
   * Sends one replayed event, paced by the reader, so memory stays bounded however long the backlog.
   * A reader that takes nothing for `stallMs` is dropped as a slow reader.
   *
   * @returns false when the connection is gone and the replay should stop.
   */
  async replay(frame: Uint8Array, stallMs: number): Promise<boolean> {
    if (this.sink.bufferedBytes > this.maxBufferedBytes / 2) {
      let timer: NodeJS.Timeout | undefined;
      const stalled = await Promise.race([
        this.sink.drained().then(() => false),
        new Promise<boolean>((resolve) => {
          this.wakeReplay = () => resolve(false);
          timer = setTimeout(() => resolve(true), stallMs);
        }),
      ]);
      clearTimeout(timer);
      this.wakeReplay = undefined;
      if (stalled) this.onOverflow(this);
    }
    if (this.closed) return false;
    this.sink.write(frame);
    this.lastWriteAt = Date.now();
    return true;
  }

  /** Ends the replay: sends the held live events it did not cover, then goes live. */
  resume(): void {
    const held = this.held ?? [];
    this.held = null;
    this.heldBytes = 0;
    for (const { frame, txid, eventId } of held) {
      if (this.covered(txid) || this.closed) continue;
      this.send(frame);
      this.onReleased(eventId);
    }
  }

  /** The live path has passed the replay's snapshot: nothing live can be covered any more. */
  forgetBound(): void {
    this.bound = null;
  }

  private covered(txid: string | null): boolean {
    return this.bound !== null && txid !== null && committedBefore(txid, this.bound);
  }

  /** Ends the stream; with `abort`, drops what is still queued (the reader stopped reading). */
  close(abort = false): void {
    if (this.closed) return;
    this.closed = true;
    this.held = null;
    this.bound = null;
    this.wakeReplay?.();
    if (abort) this.sink.abort();
    else this.sink.close();
  }
}

/**
 * One timer for every connection's heartbeat. Each stream is measured from its own last write: a sweep
 * every quarter interval pings those silent for three quarters of it or more, so no stream stays
 * silent longer than `heartbeatMs`. The timer runs only while there are connections, and never keeps
 * the process alive on its own.
 */
export class HeartbeatSweep {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly heartbeatMs: number,
    private readonly connections: () => Iterable<Connection>,
  ) {}

  /** Call when the set of connections changes between empty and non-empty. */
  update(hasConnections: boolean): void {
    if (hasConnections && !this.timer) {
      const step = Math.max(1, Math.floor(this.heartbeatMs / 4));
      this.timer = setInterval(() => this.sweep(this.heartbeatMs - step), step);
      this.timer.unref();
    } else if (!hasConnections && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  private sweep(idleMs: number): void {
    const now = Date.now();
    for (const connection of this.connections()) {
      if (now - connection.lastWriteAt >= idleMs) connection.send(PING_FRAME);
    }
  }
}
