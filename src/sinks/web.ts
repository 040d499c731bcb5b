import type { Sink } from "../connection.js";
import { type Responder, STREAM_HEADERS } from "../dispatch.js";

/** The status of the answer to a client that went away unanswered; nginx's "client closed request". */
const CLIENT_GONE = 499;

/**
 * Answers one Fetch API request: `response` resolves to the `Response` once the route table has
 * decided (a refusal, the client script, or the stream). The stream's queue is counted in bytes, so
 * `bufferedBytes` is what the client has not read yet; the client going away (the request's abort
 * signal, or the stream's cancel) runs the `onGone` callback once.
 */
export function createWebResponder(signal?: AbortSignal): {
  responder: Responder;
  response: Promise<Response>;
} {
  let resolveResponse!: (response: Response) => void;
  const response = new Promise<Response>((resolve) => {
    resolveResponse = resolve;
  });
  let responded = false;
  const respond = (answer: Response) => {
    responded = true;
    resolveResponse(answer);
  };
  let gone = false;
  let onGone: (() => void) | undefined;
  const clientGone = () => {
    if (gone) return;
    gone = true;
    onGone?.();
    // Gone before any answer (during authenticate): the route table answers nothing more, and a
    // handler awaiting `response` (Hono's middleware chain, a Next route) must still settle.
    if (!responded) respond(new Response(null, { status: CLIENT_GONE }));
  };
  if (signal?.aborted) clientGone();
  signal?.addEventListener("abort", clientGone, { once: true });
  const responder: Responder = {
    send(status, headers, body) {
      signal?.removeEventListener("abort", clientGone);
      respond(new Response(body, { status, headers }));
    },
    start() {
      const { stream, sink } = webSink(clientGone, () => signal?.removeEventListener("abort", clientGone));
      respond(new Response(stream, { status: 200, headers: STREAM_HEADERS }));
      return sink;
    },
    onGone(fn) {
      onGone = fn;
      if (gone) fn();
    },
  };
  return { responder, response };
}

/**
 * A byte-counted `ReadableStream` and the {@link Sink} that writes to it: `clientGone` runs when the
 * reader cancels, `ended` when the sink closes or aborts. Also the admin's live feed's writer.
 */
export function webSink(
  clientGone: () => void,
  ended: () => void,
): { stream: ReadableStream<Uint8Array>; sink: Sink } {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let closed = false;
  // Resolved when the reader asks for more with nothing queued: all written data was taken.
  let drainWaiters: Array<() => void> = [];
  const wakeDrainWaiters = () => {
    for (const resolve of drainWaiters) resolve();
    drainWaiters = [];
  };
  let cancelled = false;
  const stream = new ReadableStream<Uint8Array>(
    {
      start(c) {
        controller = c;
      },
      pull: wakeDrainWaiters,
      cancel() {
        cancelled = true;
        wakeDrainWaiters();
        clientGone();
      },
    },
    { highWaterMark: 0, size: (chunk) => chunk.byteLength },
  );
  function end(finish: () => void): void {
    if (closed) return;
    closed = true;
    ended();
    wakeDrainWaiters();
    try {
      finish();
    } catch {
      // Already cancelled by the client: nothing left to end.
    }
  }
  const sink: Sink = {
    write(chunk) {
      if (!closed) controller.enqueue(chunk);
    },
    get bufferedBytes() {
      return closed ? 0 : -(controller.desiredSize ?? 0);
    },
    drained() {
      if (closed || cancelled || (controller.desiredSize ?? 0) >= 0) return Promise.resolve();
      return new Promise((resolve) => drainWaiters.push(resolve));
    },
    abort() {
      // Erroring the stream discards its queue; the runtime then drops the response.
      end(() => controller.error(new Error("pgrealtime: the client stopped reading")));
    },
    close() {
      end(() => controller.close());
    },
  };
  return { stream, sink };
}
