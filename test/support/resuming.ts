import { SseClient } from "./sse.js";

type WireEvent = { id: string; type: string; scope: string; detail: Record<string, unknown> };

/**
 * A client that behaves like the browser client on the wire: it reconnects after every loss sending
 * the last id it saw as `Last-Event-ID`, and drops an id it has already dispatched. Tests assert on
 * `dispatched` (what the application would see) and on `received` (what the server sent).
 */
export class ResumingClient {
  /** Events the application would see: each id once, in arrival order. */
  readonly dispatched: WireEvent[] = [];
  /** Every application event the server sent, duplicates included. */
  readonly received: WireEvent[] = [];
  readonly resets: string[] = [];
  /** When each reset arrived (ms since epoch), beside `resets`. */
  readonly resetTimes: number[] = [];
  /** Each connection's URL and the event ids the server sent on it, in order. */
  readonly connections: Array<{ url: string; ids: string[] }> = [];
  connects = 0;
  lastEventId: string | null;
  private readonly seen = new Set<string>();
  private current: SseClient | undefined;
  private closed = false;
  private readonly waiters = new Set<() => void>();

  constructor(
    /** Where the next (re)connect goes: another server process, another identity. */
    public url: string,
    startAt: string | null = null,
  ) {
    this.lastEventId = startAt;
  }

  /** Connects (again) and resolves once the server said `connected`. */
  async connect(): Promise<void> {
    const headers: Record<string, string> = {};
    if (this.lastEventId !== null) headers["Last-Event-ID"] = this.lastEventId;
    const url = this.url;
    const client = await SseClient.open(url, { headers });
    if (client.response.status !== 200) throw new Error(`stream answered ${client.response.status}`);
    this.current = client;
    this.connects++;
    const connection = { url, ids: [] as string[] };
    this.connections.push(connection);
    let handled = 0;
    // SseClient notifies on every chunk; take the new messages from where we left off.
    const consume = () => {
      for (; handled < client.messages.length; handled++) {
        const message = client.messages[handled];
        if (!message) continue;
        if (message.event === "reset") {
          this.resets.push(JSON.parse(message.data).reason);
          this.resetTimes.push(Date.now());
          // Like the browser client: the reset's id line is the cursor to go on from (empty: none).
          if (message.id !== undefined) this.lastEventId = message.id || null;
        }
        if (message.event !== "message") continue;
        const event = JSON.parse(message.data) as WireEvent;
        this.received.push(event);
        connection.ids.push(event.id);
        if (message.id !== undefined) this.lastEventId = message.id;
        if (this.seen.has(event.id)) continue;
        this.seen.add(event.id);
        this.dispatched.push(event);
      }
      for (const waiter of [...this.waiters]) waiter();
      if (!client.ended) return;
      stop();
      if (!this.closed && this.current === client) void this.reconnect();
    };
    const stop = client.onChange(consume);
    consume();
    await client.next("connected");
    // Moved (`url` changed) while this connection was being opened: go where it was sent instead.
    if (url !== this.url) client.close();
  }

  /** Cuts the current connection from the client side, as a network loss would; it reconnects. */
  drop(): void {
    this.current?.close();
  }

  /** Waits until `predicate` holds for the dispatched events. */
  until(predicate: (events: WireEvent[]) => boolean, what: string, timeoutMs = 15_000): Promise<void> {
    if (predicate(this.dispatched)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`timed out waiting for ${what}; dispatched ${this.dispatched.map((e) => e.id)}`));
      }, timeoutMs);
      const check = () => {
        if (!predicate(this.dispatched)) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve();
      };
      this.waiters.add(check);
    });
  }

  close(): void {
    this.closed = true;
    this.current?.close();
  }

  private async reconnect(): Promise<void> {
    // Like the browser client: keep trying until the server takes us back.
    for (let attempt = 0; !this.closed; attempt++) {
      try {
        await this.connect();
        return;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, Math.min(1000, 50 * 2 ** attempt)));
      }
    }
  }
}
