import { randomUUID } from "node:crypto";
import pg from "pg";
import { RealtimeError } from "./errors.js";
import { quoteIdent } from "./store.js";
import type { ListenerState, Logger } from "./types.js";

const BACKOFF_BASE_MS = 100;
const BACKOFF_CAP_MS = 5_000;

/**
 * The wait (ms) before retry number `attempt` (0-based): full jitter below a ceiling that doubles from
 * 100 ms and is capped at 5 s. Callers reset `attempt` after a success.
 */
export function backoffDelay(attempt: number): number {
  return Math.floor(Math.random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt));
}
/** How long a connection attempt may take before it counts as failed (and is retried). */
const CONNECT_TIMEOUT_MS = 10_000;
/** How long the start-up probe waits for its own notification, once sent. */
const PROBE_TIMEOUT_MS = 2_000;
/** Notifications of this prefix are probes, from this process or another: never events. */
export const PROBE_PREFIX = '{"probe":';

export interface ListenerOptions {
  /** How to reach PostgreSQL: a session connection (LISTEN does not survive transaction pooling). */
  connection: pg.ClientConfig;
  channel: string;
  /** Milliseconds between liveness queries; one still unanswered at the next drops the connection. */
  heartbeatMs: number;
  logger: Logger;
  /** Called with each notification payload on the channel, in commit order. */
  onPayload(payload: string): void;
  /**
   * Called at each connection attempt, before it LISTENs, with a promise that resolves to whether
   * this attempt ended up listening. Notifications of the attempt arrive after the call.
   */
  onAttempt?(listening: Promise<boolean>): void;
  /** Called on each state change, with the state before it and the error that caused it, if any. */
  onState?(state: ListenerState, previous: ListenerState, error?: unknown): void;
}

/**
 * The process's one LISTEN connection, never borrowed from a pool. It connects on first need,
 * re-LISTENs after every loss with capped exponential backoff and jitter, and checks its own liveness
 * with a heartbeat query so that a half-open socket is noticed too. At its first start it proves that
 * notifications arrive (a hot standby or a transaction pooler would swallow them) and fails loudly if not.
 */
export class Listener {
  state: ListenerState = "idle";
  private client: pg.Client | undefined;
  private attempt = 0;
  private everListened = false;
  private failure: RealtimeError | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private heartbeatPending = false;
  private probe: { nonce: string; arrived(): void } | undefined;
  private readyWaiters: Array<{ resolve(): void; reject(error: unknown): void }> = [];

  constructor(private readonly options: ListenerOptions) {}

  /**
   * Starts listening if not yet started; resolves once notifications flow (after retries if need be).
   *
   * @throws RealtimeError `LISTEN_UNAVAILABLE` when the connection cannot receive notifications at all.
   */
  start(): Promise<void> {
    if (this.state === "listening") return Promise.resolve();
    if (this.failure) return Promise.reject(this.failure);
    if (this.state === "closed") return Promise.reject(new RealtimeError("CLOSED", "pgrealtime: closed"));
    const ready = new Promise<void>((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
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
    this.settleWaiters(new RealtimeError("CLOSED", "pgrealtime: closed"));
    if (client) await client.end().catch(() => {});
  }

  private async connect(): Promise<void> {
    this.setState(this.everListened || this.attempt > 0 ? "reconnecting" : "connecting");
    let settle!: (listening: boolean) => void;
    const listening = new Promise<boolean>((resolve) => {
      settle = resolve;
    });
    this.options.onAttempt?.(listening);
    // The application name lets operators (and tests) find this session in pg_stat_activity.
    const client = new pg.Client({
      application_name: `pgrealtime listener ${this.options.channel}`,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      ...this.options.connection,
      keepAlive: true,
    });
    this.client = client;
    // Once connected, every failure shows up as 'error' and/or 'end'; both lead to one reconnect.
    let lost = false;
    const onLost = (error?: unknown) => {
      settle(false);
      if (lost) return;
      lost = true;
      this.onLost(client, error);
    };
    client.on("error", onLost);
    client.on("end", () => onLost());
    client.on("notification", (message) => {
      const payload = message.payload;
      if (message.channel !== this.options.channel || payload === undefined) return;
      if (payload.startsWith(PROBE_PREFIX)) {
        if (this.probe && payload === probePayload(this.probe.nonce)) this.probe.arrived();
        return;
      }
      this.options.onPayload(payload);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${quoteIdent(this.options.channel)}`);
      await this.runProbe();
    } catch (error) {
      if (!this.everListened && isFatal(error)) {
        settle(false);
        this.fail(client, error);
        return;
      }
      onLost(error);
      return;
    }
    if (this.client !== client) {
      settle(false); // closed meanwhile
      return;
    }
    this.attempt = 0;
    this.everListened = true;
    this.setState("listening");
    settle(true);
    this.startHeartbeat(client);
    this.settleWaiters();
  }

  /**
   * NOTIFYs from another session and waits for it here: a swallowed probe means LISTEN is useless.
   * The wait starts once the NOTIFY has committed, so a slow connection to the server is not mistaken
   * for a swallowed notification.
   */
  private async runProbe(): Promise<void> {
    const nonce = randomUUID();
    let arrived!: () => void;
    const arrival = new Promise<void>((resolve) => {
      arrived = resolve;
    });
    this.probe = { nonce, arrived };
    let timer: NodeJS.Timeout | undefined;
    try {
      await this.sendProbe(probePayload(nonce));
      await Promise.race([
        arrival,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () =>
              reject(
                new RealtimeError(
                  "LISTEN_UNAVAILABLE",
                  `pgrealtime: the LISTEN connection receives no notifications (a NOTIFY sent from another session did not arrive within ${PROBE_TIMEOUT_MS} ms). A transaction-pooling PgBouncer does this: set listenConnectionString to a direct or session-pooled connection.`,
                ),
              ),
            PROBE_TIMEOUT_MS,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
      this.probe = undefined;
    }
  }

  /** A short-lived session of its own, so the probe depends neither on the app's pool nor on this one. */
  private async sendProbe(payload: string): Promise<void> {
    const sender = new pg.Client({
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      ...this.options.connection,
      application_name: "pgrealtime probe",
    });
    sender.on("error", () => {});
    try {
      await sender.connect();
      await sender.query("SELECT pg_notify($1, $2)", [this.options.channel, payload]);
    } finally {
      await sender.end().catch(() => {});
    }
  }

  private fail(client: pg.Client, error: unknown): void {
    const failure =
      error instanceof RealtimeError
        ? error
        : new RealtimeError(
            "LISTEN_UNAVAILABLE",
            `pgrealtime: LISTEN is not possible on this server (${(error as Error).message}); it is a hot standby in recovery. Set listenConnectionString to the primary.`,
            { cause: error },
          );
    this.failure = failure;
    client.removeAllListeners();
    client.on("error", () => {});
    client.end().catch(() => {});
    this.client = undefined;
    this.setState("failed", failure);
    this.options.logger.error({ err: failure }, failure.message);
    this.settleWaiters(failure);
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
    const delay = backoffDelay(this.attempt);
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

  private settleWaiters(error?: unknown): void {
    for (const waiter of this.readyWaiters.splice(0)) {
      if (error) waiter.reject(error);
      else waiter.resolve();
    }
  }

  private setState(state: ListenerState, error?: unknown): void {
    const previous = this.state;
    this.state = state;
    this.options.onState?.(state, previous, error);
  }
}

function probePayload(nonce: string): string {
  return `${PROBE_PREFIX}"${nonce}"}`;
}

/** Errors that retrying cannot fix: LISTEN refused on a standby, or notifications swallowed. */
function isFatal(error: unknown): boolean {
  if (error instanceof RealtimeError) return true;
  // 25006 read_only_sql_transaction: "cannot execute LISTEN during recovery".
  return (error as { code?: string }).code === "25006";
}
