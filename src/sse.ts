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
  /** Ends the stream (idempotent). */
  close(): void;
}

/** One open event stream and what routing needs to know about it. */
export class Connection {
  lastWriteAt = Date.now();
  closed = false;

  constructor(
    /** The user id as a decimal string, or `null` when anonymous. */
    readonly userId: string | null,
    private readonly sink: Sink,
    private readonly maxBufferedBytes: number,
    private readonly onOverflow: (connection: Connection) => void,
  ) {}

  /** Writes a frame; a reader too slow to take it is disconnected rather than silently skipped. */
  send(frame: Uint8Array): void {
    if (this.closed) return;
    this.sink.write(frame);
    this.lastWriteAt = Date.now();
    if (this.sink.bufferedBytes > this.maxBufferedBytes) this.onOverflow(this);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.sink.close();
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
