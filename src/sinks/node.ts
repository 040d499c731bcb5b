import type { IncomingMessage, ServerResponse } from "node:http";
import type { Sink } from "../connection.js";
import { type Responder, STREAM_HEADERS } from "../dispatch.js";

/**
 * Answers one request over a Node `ServerResponse` (node:http, Express, Connect, Koa's raw `res`, and
 * the HTTP/2 compatibility API). Writes go straight to the socket, so `writableLength` is what the
 * client has not taken yet. `onGone` runs once when the connection closes for any reason.
 */
export function createNodeResponder(req: IncomingMessage, res: ServerResponse): Responder {
  let gone = false;
  let onGone: (() => void) | undefined;
  res.once("close", () => {
    gone = true;
    onGone?.();
  });
  return {
    send(status, headers, body) {
      // Another handler answered first (a framework's own 404): ours has nothing left to say.
      if (gone || res.headersSent) return;
      res.writeHead(status, headers).end(body ?? undefined);
    },
    start() {
      // Connection is a hop-by-hop header: HTTP/1.1 only, never HTTP/2.
      const headers =
        req.httpVersionMajor === 1 ? { ...STREAM_HEADERS, Connection: "keep-alive" } : STREAM_HEADERS;
      if (!res.headersSent) res.writeHead(200, headers);
      return nodeSink(res);
    },
    onGone(fn) {
      onGone = fn;
      if (gone) fn();
    },
  };
}

function nodeSink(res: ServerResponse): Sink {
  let closed = false;
  return {
    write(chunk) {
      if (!closed && !res.writableEnded) res.write(chunk);
    },
    get bufferedBytes() {
      return res.writableLength;
    },
    drained() {
      if (closed || res.writableLength === 0 || res.destroyed) return Promise.resolve();
      return drainedOrGone(res);
    },
    close() {
      if (closed) return;
      closed = true;
      res.end();
    },
    abort() {
      closed = true;
      res.destroy();
    },
  };
}

/** Resolves when `res` takes more writes (`drain`), or is gone (`close`). */
export function drainedOrGone(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.on("drain", done);
    res.on("close", done);
  });
}
