// Server-Sent Events framing. Frames are encoded to bytes once and written as they are; event data is
// JSON.stringify output, which never holds a raw CR or LF, so one `data:` line carries it whole.

const encoder = new TextEncoder();

/**
 * The heartbeat: a comment line, which every proxy sees as traffic, then a named `ping` event with
 * empty data, which EventSource does dispatch: a comment alone never reaches the page, and the client
 * needs to see heartbeats to tell a silent stream from a dead one.
 */
export const PING_FRAME: Uint8Array = encoder.encode(": ping\nevent: ping\ndata:\n\n");

/** `retry: <ms>`: how long the browser waits before its own reconnect. */
export function retryFrame(retryMs: number): Uint8Array {
  return encoder.encode(`retry: ${retryMs}\n\n`);
}

/**
 * A named control event (`connected`, `reset`) with a JSON data line, and optionally an `id:` line
 * that moves the client's cursor (an empty one clears it).
 */
export function namedFrame(name: string, data: object, id?: string): Uint8Array {
  const idLine = id === undefined ? "" : `id: ${id}\n`;
  return encoder.encode(`event: ${name}\n${idLine}data: ${JSON.stringify(data)}\n\n`);
}

/** An application event: `id:` for resume, then the event as the browser sees it. */
export function eventFrame(event: { id: string; type: string; scope: string; detail: object }): Uint8Array {
  const data = JSON.stringify({ id: event.id, type: event.type, scope: event.scope, detail: event.detail });
  return encoder.encode(`id: ${event.id}\ndata: ${data}\n\n`);
}

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
 * events are held back and sent after it, minus those the replay already sent; the replayed ids stay
 * remembered until the live path has caught up with the replay (see `forgetReplayed`), so a notification
 * that arrives late is not sent twice either: no gap, no duplicate.
 */
export class Connection {
  lastWriteAt = Date.now();
  closed = false;
  private held: Array<{ id: string; frame: Uint8Array }> | null = null;
  private heldBytes = 0;
  private replayed: Set<string> | null = null;
  private wakeReplay: (() => void) | undefined;

  constructor(
    /** The user id as a decimal string, or `null` when anonymous. */
    readonly userId: string | null,
    private readonly sink: Sink,
    private readonly maxBufferedBytes: number,
    private readonly onOverflow: (connection: Connection) => void,
  ) {}

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

  /** Sends a live event now, or holds it while a replay runs; drops one the replay already sent. */
  deliver(id: string, frame: Uint8Array): void {
    if (this.replayed?.has(id)) return;
    if (!this.held) {
      this.send(frame);
      return;
    }
    // Live events pile up behind a replay only as far as the write buffer may; past that the client
    // is dropped and resumes from its last id, like any slow reader.
    if (this.heldBytes > this.maxBufferedBytes) {
      this.onOverflow(this);
      return;
    }
    this.held.push({ id, frame });
    this.heldBytes += frame.byteLength;
  }

  /** Starts holding live events back for a replay from `lastEventId`, which the client already has. */
  hold(lastEventId: string): void {
    this.held = [];
    this.replayed = new Set([lastEventId]);
  }

  /**
   * Sends one replayed event, paced by the reader, so memory stays bounded however long the backlog.
   * A reader that takes nothing for `stallMs` is dropped as a slow reader.
   *
   * @returns false when the connection is gone and the replay should stop.
   */
  async replay(id: string, frame: Uint8Array, stallMs: number): Promise<boolean> {
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
    this.replayed?.add(id);
    this.sink.write(frame);
    this.lastWriteAt = Date.now();
    return true;
  }

  /** Ends the replay: sends the held live events it did not already send, then goes live. */
  resume(): void {
    const held = this.held ?? [];
    this.held = null;
    this.heldBytes = 0;
    for (const { id, frame } of held) if (!this.replayed?.has(id)) this.send(frame);
  }

  /** The live path has caught up with the replay: its ids need no more remembering. */
  forgetReplayed(): void {
    this.replayed = null;
  }

  /** Ends the stream; with `abort`, drops what is still queued (the reader stopped reading). */
  close(abort = false): void {
    if (this.closed) return;
    this.closed = true;
    this.held = null;
    this.replayed = null;
    this.wakeReplay?.();
    if (abort) this.sink.abort();
    else this.sink.close();
  }
}

/**
 * One timer for every connection's heartbeat: each sweep pings the connections idle for at least half
 * the interval, so no stream stays silent longer than `heartbeatMs`. The timer runs only while there
 * are connections, and never keeps the process alive on its own.
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
      const half = Math.max(1, Math.floor(this.heartbeatMs / 2));
      this.timer = setInterval(() => this.sweep(half), half);
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
