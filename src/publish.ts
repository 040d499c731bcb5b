// The whole publish path: validate, serialise once, check sizes, then store + notify (storage on) or
// notify the signed event (storage off). Validation is pure and throws before anything is written, so
// concurrent publishes are coalesced and written in one transaction.
import { encodeEvent } from "./channel.js";
import { RealtimeError } from "./errors.js";
import { describe, normalizeUserId, refuseUnknownKeys, serializeObject, validateType } from "./event.js";
import type { Queryable, Store } from "./store.js";
import type { PublishOptions, RealtimeEvent, Scope } from "./types.js";

/** An event validated and serialised once, ready to be stored and notified. */
export interface PreparedEvent {
  type: string;
  scope: Scope;
  userId: string | null;
  /** `detail` as compact JSON text. */
  detailJson: string;
  /** `privateData` as compact JSON text, or `null`. */
  privateDataJson: string | null;
}

const INPUT_KEYS: Record<Scope, readonly string[]> = {
  user: ["userId", "type", "detail", "privateData"],
  // userId only as null (checked before): an explicit "nobody".
  global: ["userId", "type", "detail", "privateData"],
  system: ["userId", "type", "detail", "privateData"],
};
const METHOD: Record<Scope, string> = { user: "publish", global: "publishGlobal", system: "publishSystem" };

/**
 * Validates and serialises one event.
 *
 * @throws TypeError on an unknown key, a bad type, detail, privateData or user id.
 */
export function prepareEvent(input: unknown, scope: Scope): PreparedEvent {
  const method = METHOD[scope];
  if (typeof input !== "object" || input === null) {
    throw new TypeError(`${method} takes an object like { type, detail }, got ${describe(input)}`);
  }
  const raw = input as Record<string, unknown>;
  if (scope === "global" && raw.userId != null) {
    // A userId here means the caller meant one user: sending it to everyone would leak it.
    throw new TypeError(
      "publishGlobal sends to every connection and takes no userId; use publish for one user",
    );
  }
  refuseUnknownKeys(raw, INPUT_KEYS[scope], method);
  const type = validateType(raw.type);
  let userId: string | null = null;
  if (scope === "user") {
    if (raw.userId === undefined || raw.userId === null) {
      throw new TypeError("publish needs a userId; use publishGlobal for an event every connection receives");
    }
    userId = normalizeUserId(raw.userId);
  } else if (scope === "system" && raw.userId !== undefined && raw.userId !== null) {
    userId = normalizeUserId(raw.userId);
  }
  const detailJson = raw.detail === undefined ? "{}" : serializeObject(raw.detail, "detail");
  const privateDataJson =
    raw.privateData === undefined || raw.privateData === null
      ? null
      : serializeObject(raw.privateData, "privateData");
  return { type, scope, userId, detailJson, privateDataJson };
}

export interface PublisherOptions {
  store: Store;
  storage: boolean;
  secret: string | null;
  maxPayloadBytes: number;
  /** Throws `CLOSED` once the instance is closed. */
  assertOpen(): void;
}

/** Events one coalesced statement stores at most, and the bytes of JSON it carries at most. */
const MAX_BATCH_EVENTS = 500;
const MAX_BATCH_BYTES = 4 * 1024 * 1024;
/**
 * SQLSTATE classes of an error that is the connection's or the server's, not a row's: connection
 * exceptions, insufficient resources, operator intervention, system errors, internal errors. Any other
 * error of a batch (a constraint, a trigger's RAISE, bad data) may be one row's.
 */
const SERVER_ERROR_CLASSES = new Set(["08", "53", "57", "58", "XX"]);

/** Whether a failed batch should be retried one event at a time to find the row that failed it. */
function mayBeOneRows(error: unknown): boolean {
  if (error instanceof RealtimeError) return false;
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && code.length === 5 && !SERVER_ERROR_CLASSES.has(code.slice(0, 2));
}

interface Waiting {
  event: PreparedEvent;
  bytes: number;
  resolve(stored: { id: string; createdAt: Date }): void;
  reject(error: unknown): void;
}

/**
 * Coalesces the concurrent publishes of a process into one statement, so they share one transaction
 * and one commit. A publish with nothing in flight goes out at once, alone, as before; the ones that
 * arrive while a statement is in flight wait for it and go out together as the next one. Ids follow
 * call order, and each caller gets its own event or its own error: a batch that fails on a row is
 * retried one event at a time, so a bad event fails alone.
 */
class Coalescer {
  private readonly queue: Waiting[] = [];
  private running = false;
  private idle: Array<() => void> = [];

  constructor(private readonly store: Store) {}

  insert(event: PreparedEvent): Promise<{ id: string; createdAt: Date }> {
    return new Promise((resolve, reject) => {
      const bytes = event.detailJson.length + (event.privateDataJson?.length ?? 0);
      this.queue.push({ event, bytes, resolve, reject });
      if (!this.running) void this.loop();
    });
  }

  /** Resolves once every queued event was written (or failed). */
  drain(): Promise<void> {
    return this.running ? new Promise((resolve) => this.idle.push(resolve)) : Promise.resolve();
  }

  private async loop(): Promise<void> {
    this.running = true;
    try {
      while (this.queue.length > 0) await this.write(this.take());
    } finally {
      this.running = false;
      for (const resolve of this.idle.splice(0)) resolve();
    }
  }

  /** The next batch: in call order, bounded by count and bytes, at least one event. */
  private take(): Waiting[] {
    let bytes = 0;
    let count = 0;
    while (count < this.queue.length && count < MAX_BATCH_EVENTS) {
      bytes += (this.queue[count] as Waiting).bytes;
      if (count > 0 && bytes > MAX_BATCH_BYTES) break;
      count++;
    }
    return this.queue.splice(0, count);
  }

  private async write(batch: Waiting[]): Promise<void> {
    if (batch.length > 1) {
      try {
        const stored = await this.store.insertMany(batch.map((waiting) => waiting.event));
        for (const [index, waiting] of batch.entries()) {
          waiting.resolve(stored[index] as { id: string; createdAt: Date });
        }
        return;
      } catch (error) {
        if (!mayBeOneRows(error)) {
          for (const waiting of batch) waiting.reject(error);
          return;
        }
        // Nothing of the batch was stored: find the bad event by storing each alone.
      }
    }
    for (const waiting of batch) {
      try {
        waiting.resolve(await this.store.insert(waiting.event));
      } catch (error) {
        waiting.reject(error);
      }
    }
  }
}

/** Publishes events of every scope; one instance per realtime instance. */
export class Publisher {
  private readonly coalescer: Coalescer;

  constructor(private readonly options: PublisherOptions) {
    this.coalescer = new Coalescer(options.store);
  }

  /** Resolves once every publish already called was written (or failed): `close()` waits for it. */
  drain(): Promise<void> {
    return this.coalescer.drain();
  }

  /**
   * Validates, then stores and notifies one event (or only notifies it, with storage off).
   *
   * @throws TypeError / RangeError on bad input (nothing written); RealtimeError `CLOSED`,
   *   `MIGRATION_REQUIRED`.
   */
  async publish(scope: Scope, input: unknown, publishOptions?: PublishOptions): Promise<RealtimeEvent> {
    this.options.assertOpen();
    const event = prepareEvent(input, scope);
    const db = publishTarget(publishOptions);
    this.checkSize(event);
    const base = {
      type: event.type,
      scope: event.scope,
      userId: event.userId,
      detail: JSON.parse(event.detailJson),
    };
    const { store } = this.options;
    if (!this.options.storage) {
      const { payload, id, createdAt } = encodeEvent(event, this.options.secret);
      await store.notify(payload, db);
      return { id, ...base, createdAt };
    }
    // In the caller's transaction the event is the caller's alone; otherwise it joins the next batch.
    const { id, createdAt } = db ? await store.insert(event, db) : await this.coalescer.insert(event);
    return { id, ...base, createdAt };
  }

  private checkSize(event: PreparedEvent): void {
    const { maxPayloadBytes } = this.options;
    for (const [name, json] of [
      ["detail", event.detailJson],
      ["privateData", event.privateDataJson],
    ] as const) {
      const bytes = json === null ? 0 : Buffer.byteLength(json, "utf8");
      if (bytes > maxPayloadBytes) {
        throw new RangeError(
          `${name} of "${event.type}" is ${bytes} bytes of JSON, over maxPayloadBytes (${maxPayloadBytes}); store a reference (an id to fetch) instead`,
        );
      }
    }
  }
}

/**
 * The connection a publish runs on: the caller's transaction client, if given.
 *
 * @throws TypeError on an unknown option (a misspelt `client` must not publish outside the transaction)
 *   or a `client` without a `query(text, values)` method.
 */
function publishTarget(options: PublishOptions | undefined): Queryable | undefined {
  if (options === undefined || options === null) return undefined;
  if (typeof options !== "object") throw new TypeError("publish options must be an object like { client }");
  refuseUnknownKeys(options, ["client"], "publish options");
  if (options.client === undefined) return undefined;
  if (typeof (options.client as { query?: unknown } | null)?.query !== "function") {
    throw new TypeError("publish options.client must have a pg-style query(text, values) method");
  }
  return options.client as Queryable;
}

/** Raised when publishing after `close()`. */
export function closedError(): RealtimeError {
  return new RealtimeError("CLOSED", "pgrealtime: this realtime instance is closed");
}
