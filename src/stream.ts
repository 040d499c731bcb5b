import { Connection, type HeartbeatSweep, type Sink } from "./connection.js";
import { newestCursor } from "./cursor.js";
import { normalizeUserId } from "./event.js";
import { type ReplayOptions, replay } from "./replay.js";
import type { Router } from "./router.js";
import { namedFrame, retryFrame } from "./sse.js";
import type { Logger, UserId } from "./types.js";

/** A refusal before the stream starts: status, plain-text message and extra headers. */
export interface Refusal {
  status: number;
  message: string;
  headers?: Record<string, string>;
}

/** What a stream request needs from its transport, whichever framework carries it. */
export interface StreamRequest {
  /** The user id the request authenticates as (`null`: anonymous). May throw (`500`). */
  authenticate(): UserId | null | undefined | Promise<UserId | null | undefined>;
  /** The cursor sent back by the client (Last-Event-ID or `?lastEventId=`), or `null`. */
  lastEventId: string | null;
  /** A `HEAD` request: admitted like a stream, answered with its headers only. */
  headOnly: boolean;
  /** Answers before any stream starts. */
  refuse(refusal: Refusal): void;
  /** Writes the stream's status and headers; returns where its bytes go. */
  start(): Sink;
  /** Runs `fn` once when the client goes away (at once if it already has); a later call replaces it. */
  onGone(fn: () => void): void;
}

export interface StreamsOptions {
  router: Router;
  heartbeat: HeartbeatSweep;
  logger: Logger;
  retryMs: number;
  allowAnonymous: boolean;
  maxConnections: number;
  maxConnectionsPerUser: number;
  maxBufferedBytes: number;
  /** Waits (bounded) until the LISTEN connection is up; false when it is not, or the instance closed. */
  waitForListener(): Promise<boolean>;
  replay: ReplayOptions;
}

/** A place taken before the first await, so limits hold under any concurrency. */
interface Ticket {
  userId: string | null | undefined;
  revoked: boolean;
  /** The count of disconnects when it was taken: a later one of its user revokes it. */
  since: number;
}

/**
 * Every stream's life in this process: admission (capacity reserved before anything is awaited, then
 * authentication, then the LISTEN connection), the prelude (`retry:`, `connected`), then hold → replay →
 * release when the client resumes, and one cleanup however the stream ends.
 */
export class Streams {
  private readonly tickets = new Set<Ticket>();
  private disconnects = 0;
  /** The last disconnect of each user, while tickets taken before it may still be authenticating. */
  private readonly lastDisconnect = new Map<string, number>();

  constructor(private readonly options: StreamsOptions) {}

  /** Admits and opens one stream, or answers with the refusal. Never throws. */
  async serve(request: StreamRequest): Promise<void> {
    const { router, maxConnections } = this.options;
    if (router.connectionCount + this.tickets.size >= maxConnections) {
      request.refuse(this.busy(503, "Too many event streams on this server; retry later\n"));
      return;
    }
    const ticket: Ticket = { userId: undefined, revoked: false, since: this.disconnects };
    this.tickets.add(ticket);
    request.onGone(() => this.tickets.delete(ticket));
    try {
      const refusal = await this.admit(ticket, request);
      if (!this.tickets.has(ticket)) return; // the client went away meanwhile
      if (refusal) request.refuse(refusal);
      else if (request.headOnly) request.start().close();
      else this.open(ticket.userId ?? null, request);
    } catch (error) {
      this.options.logger.error({ err: error }, "pgrealtime: could not open an event stream");
      request.refuse({ status: 500, message: "Internal error\n" });
    } finally {
      this.tickets.delete(ticket);
      if (this.tickets.size === 0) this.lastDisconnect.clear();
    }
  }

  /** Ends the open streams of `userId` in this process, and the ones being admitted. */
  disconnect(userId: string): void {
    this.disconnects++;
    if (this.tickets.size > 0) this.lastDisconnect.set(userId, this.disconnects);
    for (const ticket of this.tickets) if (ticket.userId === userId) ticket.revoked = true;
    for (const connection of this.options.router.connectionsOf(userId)) this.release(connection, false);
  }

  /**
   * Sends `event: reset` to every open stream, with the cursor to go on from: `newest` (the newest row,
   * tagged for each stream's identity) or none.
   */
  resetAll(reason: string, newest: { id: bigint; createdMicros: string | null } | null): void {
    for (const connection of this.options.router.connections()) {
      const cursor = newest === null ? undefined : newestCursor(newest, connection.identityTag);
      connection.send(namedFrame("reset", { reason }, cursor));
    }
  }

  /** Ends every stream (close()). */
  closeAll(): void {
    for (const connection of [...this.options.router.connections()]) {
      // A client that is not reading would keep a gracefully ended response (and the server) open.
      this.release(connection, connection.bufferedBytes > 0);
    }
  }

  private async admit(ticket: Ticket, request: StreamRequest): Promise<Refusal | null> {
    let userId: string | null;
    try {
      const raw = await request.authenticate();
      userId = raw === null || raw === undefined ? null : normalizeUserId(raw, "authenticate's result");
    } catch (error) {
      this.options.logger.error({ err: error }, "pgrealtime: authenticate failed; stream refused");
      return { status: 500, message: "Authentication failed\n" };
    }
    if (userId === null && !this.options.allowAnonymous) {
      return { status: 401, message: "Sign in to receive events\n" };
    }
    if (userId !== null && this.userCount(userId) >= this.options.maxConnectionsPerUser) {
      return this.busy(429, "Too many event streams for this user; close a tab or retry later\n");
    }
    ticket.userId = userId;
    // Signed out while authenticate was still running: the answer may predate the sign-out.
    if (userId !== null && (this.lastDisconnect.get(userId) ?? -1) > ticket.since) ticket.revoked = true;
    if (!(await this.options.waitForListener())) {
      return this.busy(503, "Realtime events are unavailable: not connected to PostgreSQL\n");
    }
    // Signed out (disconnectUser) while being admitted: let the client authenticate again.
    if (ticket.revoked) return this.busy(503, "The session changed; reconnect\n");
    return null;
  }

  private userCount(userId: string): number {
    let count = this.options.router.userConnectionCount(userId);
    for (const ticket of this.tickets) if (ticket.userId === userId) count++;
    return count;
  }

  private busy(status: number, message: string): Refusal {
    return {
      status,
      message,
      headers: { "Retry-After": String(Math.max(1, Math.ceil(this.options.retryMs / 1000))) },
    };
  }

  private open(userId: string | null, request: StreamRequest): void {
    const { router, heartbeat, maxBufferedBytes, logger } = this.options;
    const sink = request.start();
    const connection = new Connection(
      userId,
      sink,
      maxBufferedBytes,
      (slow) => {
        logger.warn(
          { userId: slow.userId, maxBufferedBytes },
          "pgrealtime: disconnected a client that stopped reading; it resumes from its last id",
        );
        this.release(slow, true);
      },
      (eventId) => router.released(eventId, userId),
    );
    connection.send(retryFrame(this.options.retryMs));
    connection.send(namedFrame("connected", { userId }));
    const cursor = request.lastEventId;
    if (cursor !== null) connection.hold();
    router.add(connection);
    heartbeat.update(true);
    request.onGone(() => this.release(connection, false));
    if (cursor !== null) void replay(connection, cursor, this.options.replay);
  }

  private release(connection: Connection, abort: boolean): void {
    const { router, heartbeat } = this.options;
    if (!router.delete(connection)) return;
    connection.close(abort);
    heartbeat.update(router.connectionCount > 0);
  }
}
