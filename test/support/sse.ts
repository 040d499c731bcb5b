// A wire-level Server-Sent Events reader for tests: it parses the bytes the server really sent, by the
// rules of the HTML standard (CR, LF and CRLF all end a line), so a forged field or a split event shows.
import { expect, onTestFinished } from "vitest";

/** One dispatched SSE message. `event` is "message" when the frame named none. */
export interface SseMessage {
  event: string;
  data: string;
  /** The `id:` field of this frame, if it had one. */
  id?: string;
}

/**
 * The `id:` line of event `id` as the server writes it: a cursor token, the event id followed by the
 * row's tag and the stream's identity tag (see src/cursor.ts).
 */
export function cursorPattern(id: string): RegExp {
  return new RegExp(`^${id}\\.[0-9a-z]{1,5}\\.[0-9a-z]{1,4}$`);
}

/**
 * Opens a stream (resending `cursor` as Last-Event-ID, if any) that is closed when the test ends, and
 * waits for its `connected` event.
 */
export async function openStream(url: string, cursor: string | null = null): Promise<SseClient> {
  const stream = await SseClient.open(url, cursor === null ? {} : { headers: { "Last-Event-ID": cursor } });
  onTestFinished(() => stream.close());
  expect(stream.response.status).toBe(200);
  await stream.next("connected");
  return stream;
}

export class SseClient {
  readonly messages: SseMessage[] = [];
  readonly comments: string[] = [];
  /** Every `retry:` value received. */
  readonly retries: number[] = [];
  /** The decoded text of every chunk, in order, with the time it arrived (ms since epoch). */
  readonly chunks: { text: string; at: number }[] = [];
  ended = false;
  private parsed = 0;
  private readonly parsedEvents: Array<{
    id: string;
    type: string;
    scope: string;
    detail: Record<string, unknown>;
  }> = [];
  private buffer = "";
  private fields: { event?: string; data: string[]; id?: string } = { data: [] };
  private waiters = new Set<() => void>();
  private readonly controller: AbortController;

  private constructor(
    readonly response: Response,
    controller: AbortController,
  ) {
    this.controller = controller;
  }

  /** Opens a stream; resolves once the response headers arrived (any status). */
  static async open(url: string, init: RequestInit = {}): Promise<SseClient> {
    const controller = new AbortController();
    const response = await fetch(url, { ...init, signal: controller.signal });
    const client = new SseClient(response, controller);
    if (response.body) void client.pump(response.body);
    else client.ended = true;
    return client;
  }

  /** Application events (frames without an `event:` name), their data parsed as JSON. */
  get events(): Array<{ id: string; type: string; scope: string; detail: Record<string, unknown> }> {
    // Parsed once and kept: waiting on a long stream re-reads this after every chunk.
    for (; this.parsed < this.messages.length; this.parsed++) {
      const message = this.messages[this.parsed] as SseMessage;
      if (message.event === "message") this.parsedEvents.push(JSON.parse(message.data));
    }
    return this.parsedEvents;
  }

  /** Waits until `predicate` holds for the messages received so far; fails after `timeoutMs`. */
  async until(predicate: (client: SseClient) => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    if (predicate(this)) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(
          new Error(
            `timed out after ${timeoutMs} ms waiting for ${what}; got ${JSON.stringify(this.messages)}`,
          ),
        );
      }, timeoutMs);
      const check = () => {
        if (!predicate(this)) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve();
      };
      this.waiters.add(check);
    });
  }

  /** Waits for the first message named `event` ("message" for application events) and returns it. */
  async next(event: string, timeoutMs?: number): Promise<SseMessage> {
    await this.until((c) => c.messages.some((m) => m.event === event), `an "${event}" message`, timeoutMs);
    return this.messages.find((m) => m.event === event) as SseMessage;
  }

  /** Waits for at least `count` application events. */
  async waitForEvents(count: number, timeoutMs?: number): Promise<void> {
    await this.until((c) => c.events.length >= count, `${count} events`, timeoutMs);
  }

  /** Calls `fn` after every chunk and at the end of the stream; returns a function that stops it. */
  onChange(fn: () => void): () => void {
    this.waiters.add(fn);
    return () => this.waiters.delete(fn);
  }

  /** Aborts the request, as a browser closing the tab does. */
  close(): void {
    this.controller.abort();
  }

  private async pump(body: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    try {
      for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
        const text = decoder.decode(chunk, { stream: true });
        this.chunks.push({ text, at: Date.now() });
        this.feed(text);
      }
    } catch {
      // Aborted by close(), or the server cut the connection: both simply end the stream.
    }
    this.ended = true;
    this.notify();
  }

  private feed(text: string): void {
    this.buffer += text;
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.buffer);
      // A lone CR at the end may be the first half of CRLF: wait for the next chunk.
      if (!match || (match[0] === "\r" && match.index === this.buffer.length - 1)) break;
      const line = this.buffer.slice(0, match.index);
      this.buffer = this.buffer.slice(match.index + match[0].length);
      this.line(line);
    }
    this.notify();
  }

  private line(line: string): void {
    if (line === "") {
      if (this.fields.data.length > 0) {
        const message: SseMessage = {
          event: this.fields.event ?? "message",
          data: this.fields.data.join("\n"),
        };
        if (this.fields.id !== undefined) message.id = this.fields.id;
        this.messages.push(message);
      }
      this.fields = { data: [] };
      return;
    }
    if (line.startsWith(":")) {
      this.comments.push(line.slice(1).trim());
      return;
    }
    const colon = line.indexOf(":");
    const name = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (name === "data") this.fields.data.push(value);
    else if (name === "event") this.fields.event = value;
    else if (name === "id") this.fields.id = value;
    else if (name === "retry") this.retries.push(Number(value));
  }

  private notify(): void {
    for (const waiter of [...this.waiters]) waiter();
  }
}
