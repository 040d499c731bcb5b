// A loopback TCP proxy between a client and PostgreSQL that the test drives to make the faults a
// network makes: connections cut (both ends see a reset), a dead path that keeps sockets open but moves
// no byte (half-open), connections refused for a while, a connection cut in the middle of its start-up.
import net from "node:net";

/** Counters of what went through the proxy since it started. */
export interface ProxyCounters {
  /** Connections accepted from clients (refused ones included). */
  accepted: number;
  /** Connections accepted and reset at once while refusing. */
  refused: number;
  /** Connections reset by `cut()` or `killDuringStartup`. */
  cut: number;
  /** Connections open right now. */
  open: number;
}

interface Pair {
  client: net.Socket;
  server: net.Socket;
  /** Bytes from the server still allowed before this pair is cut (`killDuringStartup`); none: unlimited. */
  budget?: number;
}

const LOOPBACK = new Set(["127.0.0.1", "::1", "localhost"]);

/**
 * A TCP proxy on 127.0.0.1 (ephemeral port) in front of the PostgreSQL server of `databaseUrl`.
 *
 * @param databaseUrl a `postgres://` URL whose host is a loopback address (anything else is refused:
 *   this proxy is for tests on one machine).
 * @throws TypeError when the URL is not a loopback `postgres://` URL.
 */
export async function startProxy(databaseUrl: string): Promise<FaultProxy> {
  const proxy = new FaultProxy(databaseUrl);
  await proxy.listen();
  return proxy;
}

export class FaultProxy {
  readonly counters: ProxyCounters = { accepted: 0, refused: 0, cut: 0, open: 0 };
  private readonly target: URL;
  private readonly pairs = new Set<Pair>();
  private readonly server: net.Server;
  private refusing = false;
  private holding = false;
  /** Byte budgets for the next connections, in the order they arrive (`killDuringStartup`). */
  private readonly startupKills: number[] = [];

  constructor(databaseUrl: string) {
    const target = new URL(databaseUrl);
    if (!/^postgres(ql)?:$/.test(target.protocol) || !LOOPBACK.has(target.hostname.replace(/^\[|\]$/g, ""))) {
      throw new TypeError(
        `FaultProxy: expected a postgres:// URL on a loopback host (127.0.0.1, ::1, localhost), got ${target.protocol}//${target.hostname}`,
      );
    }
    this.target = target;
    this.server = net.createServer((client) => this.accept(client));
  }

  /** `databaseUrl` with its host and port replaced by the proxy's. Valid once listening. */
  get connectionString(): string {
    const url = new URL(this.target.toString());
    url.hostname = "127.0.0.1";
    url.port = String(this.port);
    return url.toString();
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /** @internal use {@link startProxy}. */
  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(0, "127.0.0.1", () => resolve());
    });
  }

  /** Resets every open connection at once, both sides (as a failover or a dropped route does). */
  cut(): void {
    for (const pair of [...this.pairs]) this.reset(pair);
  }

  /**
   * Stops moving bytes, both ways, while keeping the sockets open: a dead network path. Bytes wait in
   * the socket buffers, as unacknowledged segments would, and flow again on {@link FaultProxy.restore}
   * unless an end gave up meanwhile.
   *
   * @param which `"all"` (default): the open connections and every new one until restored, a dead route;
   *   `"open"`: only the connections open now, while new ones work (a NAT that forgot its old flows).
   */
  blackhole(which: "all" | "open" = "all"): void {
    this.holding = which === "all";
    for (const { client, server } of this.pairs) {
      client.pause();
      server.pause();
    }
  }

  /** Ends a {@link FaultProxy.blackhole}: bytes flow again. */
  restore(): void {
    this.holding = false;
    for (const { client, server } of this.pairs) {
      client.resume();
      server.resume();
    }
  }

  /** While on, each new connection is accepted and reset at once (a server refusing connections). */
  refuse(on: boolean): void {
    this.refusing = on;
  }

  /**
   * Cuts each of the next `connections` new connections right after the server has sent it `bytes`
   * bytes: in the middle of its start-up (authentication, LISTEN, the first query), by the byte count.
   *
   * @throws RangeError unless `bytes` and `connections` are positive integers.
   */
  killDuringStartup(bytes: number, connections = 1): void {
    if (!Number.isInteger(bytes) || bytes < 1 || !Number.isInteger(connections) || connections < 1) {
      throw new RangeError(
        `killDuringStartup: bytes and connections must be positive integers, got ${bytes}, ${connections}`,
      );
    }
    for (let i = 0; i < connections; i++) this.startupKills.push(bytes);
  }

  /** Resets every connection and stops listening. */
  async close(): Promise<void> {
    this.restore();
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: net.Socket): void {
    this.counters.accepted++;
    client.on("error", () => {});
    if (this.refusing) {
      this.counters.refused++;
      client.resetAndDestroy();
      return;
    }
    const server = net.connect(
      Number(this.target.port || 5432),
      this.target.hostname.replace(/^\[|\]$/g, ""),
    );
    server.on("error", () => {});
    const pair: Pair = { client, server };
    const budget = this.startupKills.shift();
    if (budget !== undefined) pair.budget = budget;
    this.pairs.add(pair);
    this.counters.open = this.pairs.size;
    client.on("data", (chunk: Buffer) => server.write(chunk));
    server.on("data", (chunk: Buffer) => this.fromServer(pair, chunk));
    // As through a real path: an orderly end (FIN) travels on, a failure resets the other side.
    client.on("end", () => server.end());
    server.on("end", () => client.end());
    client.on("close", (hadError) => this.closed(pair, server, hadError));
    server.on("close", (hadError) => this.closed(pair, client, hadError));
    if (this.holding) {
      client.pause();
      server.pause();
    }
  }

  private fromServer(pair: Pair, chunk: Buffer): void {
    if (pair.budget === undefined) {
      pair.client.write(chunk);
      return;
    }
    if (chunk.length < pair.budget) {
      pair.budget -= chunk.length;
      pair.client.write(chunk);
      return;
    }
    // The client gets exactly the budget, then the connection ends under it; the server sees a reset.
    const prefix = chunk.subarray(0, pair.budget);
    pair.budget = 0;
    pair.server.pause();
    this.pairs.delete(pair);
    this.counters.open = this.pairs.size;
    this.counters.cut++;
    pair.server.resetAndDestroy();
    pair.client.end(prefix);
  }

  private closed(pair: Pair, other: net.Socket, hadError: boolean): void {
    if (hadError) other.resetAndDestroy();
    else other.end();
    if (pair.client.destroyed && pair.server.destroyed && this.pairs.delete(pair)) {
      this.counters.open = this.pairs.size;
    }
  }

  private reset(pair: Pair): void {
    if (!this.pairs.delete(pair)) return;
    this.counters.open = this.pairs.size;
    this.counters.cut++;
    pair.client.resetAndDestroy();
    pair.server.resetAndDestroy();
  }
}
