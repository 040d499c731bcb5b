import pg from "pg";
import { quoteIdent } from "./store.js";
import type { ListenerState, Logger } from "./types.js";

/** Reconnect delays: full jitter over a doubling ceiling, capped, reset after each success. */
const BACKOFF_BASE_MS = 100;
const BACKOFF_CAP_MS = 30_000;

export interface ListenerOptions {
  /** How to reach PostgreSQL: a session connection (LISTEN does not survive transaction pooling). */
  connection: pg.ClientConfig;
  channel: string;
  /** Milliseconds between liveness queries on the LISTEN connection; a query unanswered by the next one drops it. */
  heartbeatMs: number;
  logger: Logger;
  /** Called with each notification payload on the channel, in commit order. */
  onPayload(payload: string): void;
  /** Called on each state change, with the state before it and the error that caused it, if any. */
  onState?(state: ListenerState, previous: ListenerState, error?: unknown): void;
}

/**
 * The process's one LISTEN connection, never borrowed from a pool. It connects on first need,
 * re-LISTENs after every loss with capped exponential backoff and jitter, and checks its own liveness
 * with a heartbeat query so that a half-open socket is noticed too.
 */
export class Listener {
  state: ListenerState = "idle";
  private client: pg.Client | undefined;
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private heartbeatPending = false;
  private readyWaiters: Array<() => void> = [];

  constructor(private readonly options: ListenerOptions) {}

  /** Starts listening if not yet started; resolves once notifications flow (after retries if need be). */
  start(): Promise<void> {
    if (this.state === "listening") return Promise.resolve();
    if (this.state === "closed") return Promise.reject(new Error("listener closed"));
    const ready = new Promise<void>((resolve) => this.readyWaiters.push(resolve));
    if (this.state === "idle") void this.connect();
    return ready;
  }

  /** Stops for good: no socket, no timer left. */
  async close(): Promise<void> {
    if (this.state === "closed") return;
    this.setState("closed");
    clearTimeout(this.retryTimer);
    clearInterval(this.heartbeatTimer);
    const client = this.client;
    this.client = undefined;
    // Waiters must not hang forever; closing ends their wait (callers check state).
    for (const resolve of this.readyWaiters.splice(0)) resolve();
    if (client) await client.end().catch(() => {});
  }

  private async connect(): Promise<void> {
    this.setState(this.attempt === 0 && this.state === "idle" ? "connecting" : "reconnecting");
    // The application name lets operators (and tests) find this session in pg_stat_activity.
    const client = new pg.Client({
      application_name: `pgrealtime listener ${this.options.channel}`,
      ...this.options.connection,
      keepAlive: true,
    });
    this.client = client;
    // Once connected, every failure shows up as 'error' and/or 'end'; both lead to one reconnect.
    let lost = false;
    const onLost = (error?: unknown) => {
      if (lost) return;
      lost = true;
      this.onLost(client, error);
    };
    client.on("error", onLost);
    client.on("end", () => onLost());
    client.on("notification", (message) => {
      if (message.channel === this.options.channel && message.payload !== undefined) {
        this.options.onPayload(message.payload);
      }
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${quoteIdent(this.options.channel)}`);
    } catch (error) {
      onLost(error);
      return;
    }
    if (this.client !== client) return; // closed meanwhile
    this.attempt = 0;
    this.setState("listening");
    this.startHeartbeat(client);
    for (const resolve of this.readyWaiters.splice(0)) resolve();
  }

  private onLost(client: pg.Client, error: unknown): void {
    clearInterval(this.heartbeatTimer);
    client.removeAllListeners("notification");
    // A late socket error after we gave the client up must not crash the process.
    client.on("error", () => {});
    // end() would wait on a half-open socket; destroying it frees the socket at once.
    (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
    if (this.client !== client || this.state === "closed") return;
    this.client = undefined;
    const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** this.attempt);
    const delay = Math.floor(Math.random() * ceiling);
    this.attempt++;
    this.setState("reconnecting", error);
    this.options.logger.warn(
      { err: error, attempt: this.attempt, delayMs: delay },
      "pgrealtime: LISTEN connection lost; reconnecting",
    );
    this.retryTimer = setTimeout(() => void this.connect(), delay);
  }

  private startHeartbeat(client: pg.Client): void {
    this.heartbeatPending = false;
    this.heartbeatTimer = setInterval(() => {
      if (this.heartbeatPending) {
        // The previous query got no answer within a whole interval: treat the socket as dead.
        client.emit("error", new Error(`LISTEN connection unresponsive for ${this.options.heartbeatMs} ms`));
        return;
      }
      this.heartbeatPending = true;
      client.query("SELECT 1").then(
        () => {
          this.heartbeatPending = false;
        },
        () => {},
      );
    }, this.options.heartbeatMs);
    this.heartbeatTimer.unref();
  }

  private setState(state: ListenerState, error?: unknown): void {
    const previous = this.state;
    this.state = state;
    this.options.onState?.(state, previous, error);
  }
}
