import { randomUUID } from "node:crypto";
import pg from "pg";
import { backoffDelay, failureDetail, RetryLog } from "./backoff.js";
import { PROBE_PREFIX, probePayload } from "./channel.js";
import { RealtimeError } from "./errors.js";
import { idleSessionTimeoutMs, livenessInterval, startLiveness } from "./liveness.js";
import { CONNECT_TIMEOUT_MS, PROBE_TIMEOUT_MS, sendProbe, swallowedProbe } from "./probe.js";
import { SESSION_SQL } from "./statements.js";
import type { ListenerState, Logger } from "./types.js";

export interface ListenerOptions {
  /** How to reach PostgreSQL: a session connection (LISTEN does not survive transaction pooling). */
  connection: pg.ClientConfig;
  channel: string;
  /**
   * Milliseconds a liveness query may go unanswered before the connection counts as dead, and the interval
   * between them, unless the server's `idle_session_timeout` needs them more often.
   */
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
  /** Called when the server ends idle sessions (`idle_session_timeout`), with that timeout in ms. */
  onIdleSessionTimeout?(timeoutMs: number): void;
}

/** One connection attempt and how far it got. */
interface Attempt {
  client: pg.Client;
  /** Whether `connect()` resolved: from then on the client's own events report its failures. */
  connected: boolean;
  /** Whether it listened: losing it then is "connection lost", not "cannot reach". */
  listened: boolean;
  /** Whether it was given up, after a failure, a loss or close(). */
  over: boolean;
  settle(listening: boolean): void;
  stopLiveness(): void;
}

/**
 * The process's one LISTEN connection, never borrowed from a pool. It connects on first need,
 * re-LISTENs after every loss with capped exponential backoff and jitter, and checks its own liveness
 * with a heartbeat query so that a half-open socket is noticed too (and, more often if need be, so that
 * the server's `idle_session_timeout` never ends it). At its first start it proves that notifications
 * arrive (a hot standby or a transaction pooler would swallow them) and fails loudly if not.
 */
export class Listener {
  state: ListenerState = "idle";
  private current: Attempt | undefined;
  private attempt = 0;
  private everListened = false;
  private shortenedLogged = false;
  private readonly retryLog = new RetryLog();
  private failure: RealtimeError | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private probe: { nonce: string; arrived(): void; failed(error: unknown): void } | undefined;
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
    const current = this.current;
    this.current = undefined;
    current?.stopLiveness();
    this.settleWaiters(new RealtimeError("CLOSED", "pgrealtime: closed"));
    if (current) await current.client.end().catch(() => {});
  }

  private async connect(): Promise<void> {
    this.setState(this.everListened || this.attempt > 0 ? "reconnecting" : "connecting");
    const attempt = this.newAttempt();
    const { client } = attempt;
    try {
      await client.connect();
      attempt.connected = true;
      this.watchLiveness(attempt, await idleSessionTimeoutMs(client));
      await client.query(SESSION_SQL.listen(this.options.channel));
      await this.runProbe();
    } catch (error) {
      if (!attempt.over && this.current === attempt && !this.everListened && isFatal(error)) {
        this.fail(attempt, error);
      } else {
        this.onLost(attempt, error);
      }
      return;
    }
    if (this.current !== attempt) {
      attempt.settle(false); // closed meanwhile
      return;
    }
    this.attempt = 0;
    this.everListened = true;
    attempt.listened = true;
    this.setState("listening");
    attempt.settle(true);
    this.settleWaiters();
  }

  private newAttempt(): Attempt {
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
    const attempt: Attempt = {
      client,
      connected: false,
      listened: false,
      over: false,
      settle,
      stopLiveness() {},
    };
    this.current = attempt;
    // While connecting, connect() itself rejects with the failure; once connected, every failure shows up
    // as 'error' and/or 'end', and all of them lead to one reconnect.
    const lost = (error?: unknown) => {
      if (attempt.connected) this.onLost(attempt, error ?? new Error("the LISTEN connection ended"));
    };
    client.on("error", lost);
    client.on("end", () => lost());
    client.on("notification", (message) => this.onNotification(message));
    return attempt;
  }

  private onNotification({ channel, payload }: pg.Notification): void {
    if (channel !== this.options.channel || payload === undefined) return;
    if (payload.startsWith(PROBE_PREFIX)) {
      if (this.probe && payload === probePayload(this.probe.nonce)) this.probe.arrived();
      return;
    }
    this.options.onPayload(payload);
  }

  /**
   * Queries the session often enough for the server's idle timeout (0: none), logging once why the
   * interval is shorter than `heartbeatMs`, if it is.
   */
  private watchLiveness(attempt: Attempt, idleTimeoutMs: number): void {
    const { heartbeatMs, logger } = this.options;
    const livenessMs = livenessInterval(heartbeatMs, idleTimeoutMs);
    if (idleTimeoutMs > 0) this.options.onIdleSessionTimeout?.(idleTimeoutMs);
    if (livenessMs < heartbeatMs && !this.shortenedLogged) {
      this.shortenedLogged = true;
      logger.warn(
        { idleSessionTimeoutMs: idleTimeoutMs, livenessMs },
        `pgrealtime: the server ends sessions idle for ${idleTimeoutMs} ms (idle_session_timeout), sooner than heartbeatMs (${heartbeatMs} ms) would query the LISTEN connection; querying it every ${livenessMs} ms instead`,
      );
    }
    attempt.stopLiveness = startLiveness(attempt.client, livenessMs, heartbeatMs, (error) =>
      attempt.client.emit("error", error),
    );
  }

  /**
   * NOTIFYs from another session and waits for it here: a swallowed probe means LISTEN is useless.
   * The wait starts once the NOTIFY has committed, so a slow connection to the server is not mistaken
   * for a swallowed notification; it ends early, with that error, when the connection is lost.
   */
  private async runProbe(): Promise<void> {
    const nonce = randomUUID();
    let timer: NodeJS.Timeout | undefined;
    const outcome = new Promise<void>((resolve, reject) => {
      this.probe = { nonce, arrived: resolve, failed: reject };
    });
    // The connection may be lost while the probe is still being sent, before anything awaits the
    // outcome: an unhandled rejection would end the process.
    outcome.catch(() => {});
    try {
      await sendProbe(this.options.connection, this.options.channel, probePayload(nonce));
      timer = setTimeout(() => this.probe?.failed(swallowedProbe()), PROBE_TIMEOUT_MS);
      await outcome;
    } finally {
      clearTimeout(timer);
      this.probe = undefined;
    }
  }

  private fail(attempt: Attempt, error: unknown): void {
    const failure =
      error instanceof RealtimeError
        ? error
        : new RealtimeError(
            "LISTEN_UNAVAILABLE",
            `pgrealtime: LISTEN is not possible on this server (${(error as Error).message}); it is a hot standby in recovery. Set listenConnectionString to the primary.`,
            { cause: error },
          );
    this.failure = failure;
    this.giveUp(attempt);
    attempt.client.end().catch(() => {});
    this.current = undefined;
    this.setState("failed", failure);
    this.options.logger.error({ err: failure }, failure.message);
    this.settleWaiters(failure);
  }

  private onLost(attempt: Attempt, error: unknown): void {
    if (attempt.over) return;
    if (this.current === attempt) this.probe?.failed(error);
    this.giveUp(attempt);
    // end() would wait on a half-open socket; destroying it frees the socket at once.
    const { client } = attempt as unknown as { client: { connection?: { stream?: { destroy(): void } } } };
    client.connection?.stream?.destroy();
    if (this.current !== attempt || this.state === "closed") return;
    this.current = undefined;
    const delay = backoffDelay(this.attempt);
    const retry = this.attempt++;
    this.setState("reconnecting", error);
    const fields = { err: error, attempt: this.attempt, delayMs: delay };
    if (attempt.listened) {
      this.options.logger.warn(fields, "pgrealtime: LISTEN connection lost; reconnecting");
    } else if (this.retryLog.shouldLog(retry)) {
      this.options.logger.warn(fields, `pgrealtime: ${describeFailure(error)}; retrying in ${delay} ms`);
    }
    this.retryTimer = setTimeout(() => void this.connect(), delay);
  }

  /** Marks the attempt over: it delivers nothing more, and a late error from it cannot crash the process. */
  private giveUp(attempt: Attempt): void {
    attempt.over = true;
    attempt.settle(false);
    attempt.stopLiveness();
    attempt.client.removeAllListeners("notification");
    attempt.client.on("error", () => {});
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

/** Errors that retrying cannot fix: LISTEN refused on a standby, or notifications swallowed. */
function isFatal(error: unknown): boolean {
  if (error instanceof RealtimeError) return true;
  // 25006 read_only_sql_transaction: "cannot execute LISTEN during recovery".
  return (error as { code?: string }).code === "25006";
}

/**
 * Why an attempt that never listened failed: the server's own refusal (an error it sent, with a
 * severity), or else a network failure, e.g. "cannot reach PostgreSQL for LISTEN (ECONNREFUSED 127.0.0.1:1)".
 */
function describeFailure(error: unknown): string {
  if ((error as { severity?: string } | undefined)?.severity) {
    return `the LISTEN connection attempt failed (${(error as Error).message})`;
  }
  return `cannot reach PostgreSQL for LISTEN (${failureDetail(error)})`;
}
