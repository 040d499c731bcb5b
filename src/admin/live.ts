// `GET {basePath}/admin/live`: the list page's live mode. Every event of every scope that reaches this
// process (`realtime.subscribe`), as a summary framed like a pgrealtime event of type `admin.event`, so
// the page's own pgrealtime client dispatches it as `rt:admin.event`. Never the detail or private data.
import type { Realtime } from "../api.js";
import { Connection, HeartbeatSweep } from "../connection.js";
import { STREAM_HEADERS } from "../dispatch.js";
import { webSink } from "../sinks/web.js";
import { eventFrame, namedFrame, retryFrame } from "../sse.js";
import type { Logger, RealtimeEvent } from "../types.js";

/** The type of the live frames: the page listens for `rt:admin.event`. */
const LIVE_EVENT_TYPE = "admin.event";

/** Summaries are small: a page this far behind is dropped, and its client reconnects. */
const MAX_BUFFERED_BYTES = 1024 * 1024;

/** The summary of one event on the live stream (the `detail` of an `admin.event`). */
interface LiveSummary {
  id: string;
  type: string;
  scope: string;
  userId: string | null;
  /** ISO 8601. */
  createdAt: string;
  replayOf: string | null;
}

/** The live streams of one admin: each its own subscription, heartbeats like the event stream's. */
export class LiveFeed {
  /** Each open stream and what ends it. */
  private readonly open = new Map<Connection, () => void>();
  private readonly heartbeat: HeartbeatSweep;
  private closed = false;

  constructor(
    private readonly realtime: Pick<Realtime, "subscribe">,
    private readonly options: { heartbeatMs: number; retryMs: number; logger: Logger },
  ) {
    this.heartbeat = new HeartbeatSweep(options.heartbeatMs, () => this.open.keys());
  }

  /** Opens one live stream; `503` once the instance is closed. */
  serve(request: Request): Response {
    let connection: Connection | undefined;
    let unsubscribe = () => {};
    const end = (abort: boolean) => {
      if (!connection || !this.open.delete(connection)) return;
      unsubscribe();
      connection.close(abort);
      this.heartbeat.update(this.open.size > 0);
    };
    const { stream, sink } = webSink(
      () => end(false),
      () => {},
    );
    const live = new Connection(null, sink, MAX_BUFFERED_BYTES, () => end(true));
    try {
      unsubscribe = this.realtime.subscribe((event) => live.send(summaryFrame(event)));
    } catch (error) {
      // Closed meanwhile: subscribe refuses, and so does the feed.
      this.options.logger.debug({ err: error }, "pgrealtime: admin live stream refused");
      return new Response("The realtime instance is closed\n", { status: 503 });
    }
    if (this.closed) {
      unsubscribe();
      return new Response("The realtime instance is closed\n", { status: 503 });
    }
    connection = live;
    this.open.set(live, () => end(false));
    this.heartbeat.update(true);
    request.signal.addEventListener("abort", () => end(false), { once: true });
    live.send(retryFrame(this.options.retryMs));
    live.send(namedFrame("connected", { userId: null }));
    return new Response(stream, {
      status: 200,
      // no-store like every admin answer; no-transform keeps compression middleware from buffering it.
      headers: { ...STREAM_HEADERS, "Cache-Control": "no-store, no-transform" },
    });
  }

  /** Ends every live stream and refuses new ones (`realtime.close()`). */
  close(): void {
    this.closed = true;
    for (const end of [...this.open.values()]) end();
  }
}

function summaryFrame(event: RealtimeEvent): Uint8Array {
  const summary: LiveSummary = {
    id: event.id,
    type: event.type,
    scope: event.scope,
    userId: event.userId,
    createdAt: event.createdAt.toISOString(),
    replayOf: event.replayOf ?? null,
  };
  // The event's own id as the cursor too: the feed does not resume, a reconnect starts live.
  return eventFrame({ id: event.id, type: LIVE_EVENT_TYPE, scope: "global", detail: summary }, event.id);
}
