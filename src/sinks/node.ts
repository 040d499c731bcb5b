import type { ServerResponse } from "node:http";
import type { Sink } from "../sse.js";

/**
 * A sink over a Node `ServerResponse` (node:http, Express, and the HTTP/2 compatibility API).
 * Writes go straight to the socket, so `writableLength` is what the client has not taken yet.
 * `onClientGone` runs once when the connection closes for any reason.
 */
export function createNodeSink(res: ServerResponse, onClientGone: () => void): Sink {
  let closed = false;
  res.once("close", onClientGone);
  return {
    write(chunk) {
      if (!closed) res.write(chunk);
    },
    get bufferedBytes() {
      return res.writableLength;
    },
    drained() {
      if (closed || res.writableLength === 0 || res.destroyed) return Promise.resolve();
      return new Promise((resolve) => {
        const done = () => {
          res.off("drain", done);
          res.off("close", done);
          resolve();
        };
        res.on("drain", done);
        res.on("close", done);
      });
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
