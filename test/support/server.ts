import http from "node:http";
import type { AddressInfo } from "node:net";
import { onTestFinished } from "vitest";
import { toNodeHandler } from "../../src/adapters/node.js";
import { createRealtime, type Realtime, type RealtimeEvent, type RealtimeOptions } from "../../src/index.js";
import { databaseUrl, freshSchema } from "./database.js";

/** Drops the expected warnings (reconnects in fault tests) but shows errors. */
const quietLogger = { debug() {}, info() {}, warn() {}, error: console.error };

/** A realtime instance on its own fresh, migrated schema of the run's database. */
export async function migratedRealtime(
  options: Partial<RealtimeOptions> = {},
): Promise<{ realtime: Realtime; schema: string; connectionString: string }> {
  const schema = options.schema ?? freshSchema();
  const connectionString = databaseUrl();
  const realtime = createRealtime({ connectionString, schema, logger: quietLogger, ...options });
  await realtime.migrate();
  return { realtime, schema, connectionString };
}

/** A real node:http server on an ephemeral port; `close()` also ends keep-alive sockets. */
export async function listen(
  listener: http.RequestListener,
): Promise<{ server: http.Server; url: string; close(): Promise<void> }> {
  const server = http.createServer(listener);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    server,
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}

/** The usual test server: `?user=<id>` signs the stream in; no parameter is anonymous. */
export function serveRealtime(realtime: Realtime) {
  return listen(
    toNodeHandler(realtime, {
      authenticate: (req) => new URL(req.url ?? "/", "http://localhost").searchParams.get("user"),
    }),
  );
}

/** A migrated instance served over HTTP, with a subscriber recording what it handles; all closed when the test ends. */
export async function servedRealtime(options: Partial<RealtimeOptions> = {}) {
  const { realtime, schema } = await migratedRealtime(options);
  onTestFinished(() => realtime.close());
  const server = await serveRealtime(realtime);
  onTestFinished(() => server.close());
  const handled: RealtimeEvent[] = [];
  realtime.subscribe((event) => handled.push(event));
  await realtime.ready();
  return { realtime, schema, server, handled };
}
