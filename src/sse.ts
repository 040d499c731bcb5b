// Server-Sent Events framing. Frames are encoded to bytes once and written as they are; event data is
// JSON.stringify output, which never holds a raw CR or LF, so one `data:` line carries it whole.

const encoder = new TextEncoder();

/** The heartbeat: a comment line that proxies see as traffic and EventSource ignores. */
export const PING_FRAME: Uint8Array = encoder.encode(": ping\n\n");

/** `retry: <ms>`: how long the browser waits before its own reconnect. */
export function retryFrame(retryMs: number): Uint8Array {
  return encoder.encode(`retry: ${retryMs}\n\n`);
}

/** A named control event (`connected`, `reset`) with a JSON data line. */
export function namedFrame(name: string, data: object): Uint8Array {
  return encoder.encode(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`);
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
 * events are held back and sent after it, minus those the replay already sent: no gap, no duplicate.
 */
export class Connection {
  lastWriteAt = Date.now();
  closed = false;
  private held: Array<{ id: string; frame: Uint8Array }> | null = null;
  private heldBytes = 0;
  private replayed: Set<string> | null = null;

  constructor(
    /** The user id as a decimal string, or `null` when anonymous. */
    readonly userId: string | null,
    private readonly sink: Sink,
    private readonly maxBufferedBytes: number,
    private readonly onOverflow: (connection: Connection) => void,
  ) {}

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

  /** Sends a live event now, or holds it while a replay runs. */
  deliver(id: string, frame: Uint8Array): void {
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

  /** Starts holding live events back for a replay. */
  hold(): void {
    this.held = [];
    this.replayed = new Set();
  }

  /** Sends one replayed event, paced by the reader: memory stays bounded however long the backlog. */
  async replay(id: string, frame: Uint8Array): Promise<void> {
    if (this.sink.bufferedBytes > this.maxBufferedBytes / 2) await this.sink.drained();
    if (this.closed) return;
    this.replayed?.add(id);
    this.sink.write(frame);
    this.lastWriteAt = Date.now();
  }

  /** Ends the replay: sends the held live events it did not already send, then goes live. */
  resume(): void {
    const held = this.held ?? [];
    const replayed = this.replayed;
    this.held = null;
    this.replayed = null;
    this.heldBytes = 0;
    for (const { id, frame } of held) if (!replayed?.has(id)) this.send(frame);
  }

  /** Ends the stream; with `abort`, drops what is still queued (the reader stopped reading). */
  close(abort = false): void {
    if (this.closed) return;
    this.closed = true;
    this.held = null;
    this.replayed = null;
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
