// Every framework adapter served by a real server on an ephemeral port, behind one shape, so an attack
// runs against each of them: `authenticate` is given the request's URL whatever the adapter hands it.

import type { Server } from "node:http";
import { getRequestListener } from "@hono/node-server";
import Fastify from "fastify";
import { Hono } from "hono";
import Koa from "koa";
import { onTestFinished } from "vitest";
import { realtimePlugin } from "../../src/adapters/fastify.js";
import { realtimeMiddleware } from "../../src/adapters/hono.js";
import { createRouteHandlers } from "../../src/adapters/next.js";
import { toNodeHandler } from "../../src/adapters/node.js";
import type { Realtime, UserId } from "../../src/index.js";
import { listen } from "./server.js";

/** What an attack's `authenticate` gets: the URL the client asked for. */
export type UrlAuthenticate = (url: URL) => UserId | null | undefined | Promise<UserId | null | undefined>;

export interface ServedAdapter {
  url: string;
  /** Closes the server, ending keep-alive sockets. */
  close(): Promise<void>;
  /** Closes the server the way an app shutting down does: no new requests, open ones allowed to end. */
  closeGracefully(): Promise<void>;
}

export interface Adapter {
  name: string;
  serve(realtime: Realtime, authenticate: UrlAuthenticate): Promise<ServedAdapter>;
}

const nodeUrl = (path: string | undefined) => new URL(path ?? "/", "http://localhost");

/** A node:http-served app, closed (once, either way) when the test ends. */
function closing(served: { url: string; server: Server; close(): Promise<void> }): ServedAdapter {
  const closeGracefully = () =>
    new Promise<void>((resolve, reject) => {
      served.server.close((error) => (error ? reject(error) : resolve()));
      served.server.closeIdleConnections();
    });
  // Either way, once: the test's own close and the one when it ends.
  const once = memo(async (how: () => Promise<void>) => how());
  const result = {
    url: served.url,
    close: () => once(served.close),
    closeGracefully: () => once(closeGracefully),
  };
  onTestFinished(() => result.close());
  return result;
}

/** `fn` run on the first call only; every call returns that first promise. */
function memo<A extends unknown[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  let result: Promise<void> | undefined;
  return (...args) => {
    result ??= fn(...args);
    return result;
  };
}

export const ADAPTERS: Adapter[] = [
  {
    name: "node:http",
    serve: async (realtime, authenticate) =>
      closing(
        await listen(toNodeHandler(realtime, { authenticate: (req) => authenticate(nodeUrl(req.url)) })),
      ),
  },
  {
    name: "koa",
    async serve(realtime, authenticate) {
      const handler = toNodeHandler(realtime, { authenticate: (req) => authenticate(nodeUrl(req.url)) });
      const app = new Koa();
      app.silent = true;
      app.use((ctx, next) => handler(ctx.req, ctx.res, next));
      return closing(await listen(app.callback()));
    },
  },
  {
    name: "fastify",
    async serve(realtime, authenticate) {
      const app = Fastify();
      await app.register(realtimePlugin, {
        realtime,
        authenticate: (request) => authenticate(nodeUrl(request.url)),
      });
      const url = await app.listen({ port: 0, host: "127.0.0.1" });
      const closeGracefully = memo(async () => {
        await app.close();
      });
      const close = () => {
        app.server.closeAllConnections();
        return closeGracefully();
      };
      onTestFinished(close);
      // app.close() itself ends the plugin's streams (preClose) and the idle sockets.
      return { url, close, closeGracefully };
    },
  },
  {
    name: "hono",
    async serve(realtime, authenticate) {
      const app = new Hono();
      app.use(realtimeMiddleware(realtime, { authenticate: (c) => authenticate(new URL(c.req.url)) }));
      return closing(await listen(getRequestListener(app.fetch)));
    },
  },
  {
    name: "next",
    async serve(realtime, authenticate) {
      const { GET, HEAD, POST } = createRouteHandlers(realtime, {
        authenticate: (request) => authenticate(new URL(request.url)),
      });
      const byMethod: Record<string, (request: Request) => Promise<Response>> = { GET, HEAD, POST };
      // As Next calls a route: the method's export, else 405.
      const route = (request: Request) =>
        byMethod[request.method]?.(request) ?? Promise.resolve(new Response(null, { status: 405 }));
      return closing(await listen(getRequestListener(route)));
    },
  },
];

/** Waits until no stream is open or being admitted; `connectionCount` changes without an event to wait on. */
export async function noStreams(realtime: Realtime, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (realtime.connectionCount > 0) {
    if (Date.now() > deadline)
      throw new Error(`${realtime.connectionCount} streams still open after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * An `authenticate` that signals when it is called (`started`) and resolves to `userId` only once
 * `release()` is called: for attacks on what happens while authentication is still running.
 */
export function gatedAuthenticate(userId: string): {
  authenticate: () => Promise<string>;
  started: Promise<void>;
  release(): void;
} {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  let called!: () => void;
  const started = new Promise<void>((resolve) => {
    called = resolve;
  });
  return {
    authenticate: async () => {
      called();
      await gate;
      return userId;
    },
    started,
    release,
  };
}
