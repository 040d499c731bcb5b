// `npm run bench`: delivery latency and publish throughput on this machine, beside raw NOTIFY as the
// floor. Uses DATABASE_URL, or an embedded PostgreSQL; works in a fresh database it drops at the end.
import http from "node:http";
import { performance } from "node:perf_hooks";
import pg from "pg";
import { createRealtime } from "pgrealtime";
import { toNodeHandler } from "pgrealtime/node";
import { Server as SocketIoServer } from "socket.io";
import { io as socketIoClient } from "socket.io-client";
import { createDatabase, dropDatabase, startPostgres } from "../scripts/postgres.mjs";

const EVENTS = 2000;
const CONNECTIONS = 200;
const FANOUT_EVENTS = 200;
const PUBLISHERS = 8;
const THROUGHPUT_EVENTS = 4000;

const server = await startPostgres();
const name = `pgrealtime_bench_${Date.now()}`;
const url = await createDatabase(server.connectionString, name);
try {
  await run(url);
} finally {
  await dropDatabase(server.connectionString, name);
  await server.stop();
}

async function run(connectionString) {
  const rows = [];

  // The floor: one NOTIFY from one session to another, nothing else.
  const listener = new pg.Client({ connectionString });
  const notifier = new pg.Client({ connectionString });
  await Promise.all([listener.connect(), notifier.connect()]);
  await listener.query("LISTEN bench");
  const raw = await sequential(EVENTS, async () => {
    const got = new Promise((resolve) => listener.once("notification", resolve));
    await notifier.query("SELECT pg_notify('bench', 'x')");
    await got;
  });
  rows.push(["raw NOTIFY → LISTEN", raw]);
  await Promise.all([listener.end(), notifier.end()]);

  const realtime = createRealtime({ connectionString, maxConnectionsPerUser: CONNECTIONS });
  await realtime.migrate();
  let waiting;
  realtime.subscribe(() => waiting?.());
  await realtime.ready();
  const viaSubscribe = await sequential(EVENTS, async () => {
    const got = new Promise((resolve) => (waiting = resolve));
    await realtime.publishGlobal({ type: "bench", detail: { n: 1 } });
    await got;
  });
  rows.push(["publish → subscribe handler", viaSubscribe]);

  // Fan-out: one event to many open SSE streams, timed until the last stream has it.
  const httpServer = http.createServer(toNodeHandler(realtime));
  await new Promise((resolve) => httpServer.listen(0, "127.0.0.1", resolve));
  const { port } = httpServer.address();
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONNECTIONS });
  const streams = await Promise.all(
    Array.from({ length: CONNECTIONS }, () => openStream(`http://127.0.0.1:${port}/realtime/events`, agent)),
  );
  const fanout = await sequential(FANOUT_EVENTS, async (i) => {
    const all = Promise.all(streams.map((s) => s.waitFor(`"n":${i}}`)));
    await realtime.publishGlobal({ type: "fanout", detail: { n: i } });
    await all;
  });
  rows.push([`publish → all of ${CONNECTIONS} SSE streams`, fanout]);
  for (const s of streams) s.close();
  agent.destroy();
  rows.push([`Socket.IO emit → all of ${CONNECTIONS} sockets`, await socketIoFanout()]);

  // Throughput: concurrent publishers, each awaiting its own calls.
  const started = performance.now();
  await Promise.all(
    Array.from({ length: PUBLISHERS }, async () => {
      for (let i = 0; i < THROUGHPUT_EVENTS / PUBLISHERS; i++) {
        await realtime.publishGlobal({ type: "throughput", detail: { i } });
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  await realtime.close();
  await new Promise((resolve) => httpServer.close(resolve));

  console.log("latency (ms)                            p50     p99     max");
  for (const [label, samples] of rows) {
    const [p50, p99, max] = [0.5, 0.99, 1].map((q) => percentile(samples, q).toFixed(2).padStart(7));
    console.log(`${label.padEnd(38)}${p50} ${p99} ${max}`);
  }
  console.log(
    `publish throughput: ${Math.round(THROUGHPUT_EVENTS / seconds)} events/s (${PUBLISHERS} concurrent publishers, storage on)`,
  );
}

/**
 * The same fan-out with Socket.IO over WebSocket, in memory: no database, no storage, no other process.
 * What pgrealtime adds over it is the INSERT + NOTIFY round trip and the cross-process bus.
 */
async function socketIoFanout() {
  const httpServer = http.createServer();
  const io = new SocketIoServer(httpServer);
  await new Promise((resolve) => httpServer.listen(0, "127.0.0.1", resolve));
  const { port } = httpServer.address();
  const sockets = await Promise.all(
    Array.from(
      { length: CONNECTIONS },
      () =>
        new Promise((resolve) => {
          const socket = socketIoClient(`http://127.0.0.1:${port}`, {
            transports: ["websocket"],
            forceNew: true,
          });
          socket.on("connect", () => resolve(socket));
        }),
    ),
  );
  const samples = await sequential(FANOUT_EVENTS, async (i) => {
    const all = Promise.all(
      sockets.map(
        (socket) => new Promise((resolve) => socket.once("fanout", (detail) => detail.n === i && resolve())),
      ),
    );
    io.emit("fanout", { n: i });
    await all;
  });
  for (const socket of sockets) socket.close();
  io.close();
  return samples;
}

async function sequential(count, step) {
  const samples = [];
  for (let i = 0; i < count; i++) {
    const start = performance.now();
    await step(i);
    samples.push(performance.now() - start);
  }
  return samples;
}

function percentile(samples, q) {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

function openStream(url, agent) {
  return new Promise((resolve, reject) => {
    const request = http.get(url, { agent }, (response) => {
      let text = "";
      const waiters = new Map();
      response.setEncoding("utf8");
      response.on("data", (chunk) => {
        text += chunk;
        for (const [needle, done] of waiters) {
          if (text.includes(needle)) {
            waiters.delete(needle);
            done();
          }
        }
        // Only the unmatched tail matters; keep memory flat over many events.
        if (waiters.size === 0) text = "";
      });
      resolve({
        waitFor: (needle) =>
          new Promise((done) => (text.includes(needle) ? done() : waiters.set(needle, done))),
        close: () => request.destroy(),
      });
    });
    request.on("error", reject);
  });
}
