// A loopback TCP proxy in front of PostgreSQL that a test drives, for faults a real network has: a cut
// (both sides see the connection end), a blackhole (sockets stay open, no byte passes: a half-open path),
// and refusing new connections for a while. Loopback only.
import net from "node:net";

export class FaultProxy {
  private readonly server: net.Server;
  private readonly pairs = new Set<{ client: net.Socket; upstream: net.Socket }>();
  private holding = false;
  private refusing = false;
  /** Connections accepted so far. */
  accepted = 0;

  private constructor(
    private readonly target: { host: string; port: number },
    private readonly original: URL,
  ) {
    this.server = net.createServer((client) => this.accept(client));
  }

  /** Starts a proxy on 127.0.0.1 for the server a connection string names. */
  static async start(connectionString: string): Promise<FaultProxy> {
    const url = new URL(connectionString);
    const proxy = new FaultProxy({ host: url.hostname, port: Number(url.port || 5432) }, url);
    await new Promise<void>((resolve) => proxy.server.listen(0, "127.0.0.1", resolve));
    return proxy;
  }

  /** The connection string, through the proxy. */
  get connectionString(): string {
    const url = new URL(this.original.href);
    url.hostname = "127.0.0.1";
    url.port = String((this.server.address() as net.AddressInfo).port);
    return url.href;
  }

  /** Ends every open connection at once, from both sides. */
  cut(): void {
    for (const { client, upstream } of this.pairs) {
      client.destroy();
      upstream.destroy();
    }
    this.pairs.clear();
  }

  /** Stops forwarding in both directions; sockets stay open, as on a dead network path. */
  blackhole(): void {
    this.holding = true;
    for (const { client, upstream } of this.pairs) {
      client.pause();
      upstream.pause();
    }
  }

  /** Forwards again after a blackhole; connections refused meanwhile stay refused. */
  restore(): void {
    this.holding = false;
    this.refusing = false;
    for (const { client, upstream } of this.pairs) {
      client.resume();
      upstream.resume();
    }
  }

  /** New connections are closed at once until {@link restore}. */
  refuse(): void {
    this.refusing = true;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: net.Socket): void {
    this.accepted++;
    if (this.refusing) {
      client.destroy();
      return;
    }
    const upstream = net.connect(this.target.port, this.target.host);
    const pair = { client, upstream };
    this.pairs.add(pair);
    const end = () => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    for (const socket of [client, upstream]) {
      socket.on("error", end);
      socket.on("close", end);
    }
    client.pipe(upstream);
    upstream.pipe(client);
    if (this.holding) {
      client.pause();
      upstream.pause();
    }
  }
}
