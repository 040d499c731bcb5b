import { randomUUID } from "node:crypto";
import type { Scope, UserId } from "./types.js";

/** NOTIFY refuses payloads of 8000 bytes or more. */
export const NOTIFY_LIMIT_BYTES = 8000;

const TYPE_PATTERN = /^[A-Za-z0-9_.-]{1,100}$/;
const RESERVED_TYPES = new Set(["connected", "disconnected", "reset", "error"]);
const MAX_USER_ID_LENGTH = 200;
/** Deeper JSON is refused: nothing legitimate nests this far, and PostgreSQL's parser has a stack too. */
const MAX_DEPTH = 100;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Why PostgreSQL could not store this string as text, or `null` when it can. */
function unstorable(text: string): string | null {
  if (text.includes("\u0000")) return "the character U+0000, which PostgreSQL text cannot store";
  if (LONE_SURROGATE.test(text)) return "a lone UTF-16 surrogate, which is not valid Unicode";
  return null;
}

/**
 * An event validated and serialised once, ready to be stored and notified. Publishing is split into
 * `prepareEvent` (pure, throws on bad input) and a store call, so that many prepared events can later
 * be written in one transaction.
 */
export interface PreparedEvent {
  type: string;
  scope: Scope;
  userId: string | null;
  /** `detail` as compact JSON text. */
  detailJson: string;
  /** `privateData` as compact JSON text, or `null`. */
  privateDataJson: string | null;
}

/**
 * Normalises a user id to its decimal string form.
 *
 * @throws TypeError when `value` is not a non-empty string of at most 200 characters or a safe integer.
 */
export function normalizeUserId(value: unknown, name = "userId"): string {
  if (typeof value === "number") {
    if (Number.isSafeInteger(value)) return String(value);
    throw new TypeError(`${name} must be a safe integer or a non-empty string, got the number ${value}`);
  }
  if (typeof value === "string") {
    const problem = unstorable(value);
    if (problem) throw new TypeError(`${name} holds ${problem}`);
    // Characters are code points: an emoji is one, though two UTF-16 units.
    const length = value.length <= MAX_USER_ID_LENGTH ? value.length : [...value].length;
    if (length === 0 || length > MAX_USER_ID_LENGTH) {
      throw new TypeError(
        `${name} must be a string of 1 to ${MAX_USER_ID_LENGTH} characters, got one of ${length}`,
      );
    }
    return value;
  }
  throw new TypeError(
    `${name} must be a non-empty string or a safe integer, got ${value === null ? "null" : typeof value}`,
  );
}

const MAX_EVENT_ID = 2n ** 63n - 1n;

/** Whether `value` is a stored event id as a client sends it back: decimal digits, within bigint. */
export function isEventId(value: string): boolean {
  return /^[0-9]{1,19}$/.test(value) && BigInt(value) <= MAX_EVENT_ID;
}

/**
 * Checks an event type against SPEC's pattern and the reserved names.
 *
 * @throws TypeError when `type` is not 1–100 characters of `[A-Za-z0-9_.-]` or is reserved.
 */
export function validateType(type: unknown): string {
  if (typeof type !== "string" || !TYPE_PATTERN.test(type)) {
    throw new TypeError(
      `type must be 1 to 100 characters of A-Z, a-z, 0-9, "_", "." or "-", got ${JSON.stringify(type) ?? String(type)}`,
    );
  }
  if (RESERVED_TYPES.has(type)) {
    throw new TypeError(`type "${type}" is reserved for the client's own events; choose another name`);
  }
  return type;
}

/**
 * Serialises a JSON plain object, refusing what JSON or PostgreSQL would silently change or reject:
 * BigInt, functions, symbols, `undefined` in arrays, non-finite numbers, cycles, class instances
 * (Date, Map, …), and strings holding U+0000.
 *
 * @throws TypeError naming the path of the first offending value.
 */
export function serializeObject(value: unknown, name: string): string {
  if (!isPlainObject(value)) {
    throw new TypeError(`${name} must be a plain JSON object, got ${describe(value)}`);
  }
  checkJson(value, name, new Set());
  return JSON.stringify(value);
}

function checkJson(value: unknown, path: string, ancestors: Set<object>): void {
  switch (typeof value) {
    case "string": {
      const problem = unstorable(value);
      if (problem) throw new TypeError(`${path} holds ${problem}`);
      return;
    }
    case "number":
      if (!Number.isFinite(value)) throw new TypeError(`${path} is ${value}, which JSON cannot represent`);
      return;
    case "boolean":
      return;
    case "object": {
      if (value === null) return;
      if (ancestors.has(value)) throw new TypeError(`${path} is a circular reference`);
      if (ancestors.size >= MAX_DEPTH) throw new TypeError(`${path} nests deeper than ${MAX_DEPTH} levels`);
      ancestors.add(value);
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          if (value[i] === undefined)
            throw new TypeError(`${path}[${i}] is undefined, which JSON cannot hold`);
          checkJson(value[i], `${path}[${i}]`, ancestors);
        }
      } else if (isPlainObject(value)) {
        for (const key of Object.keys(value)) {
          const problem = unstorable(key);
          if (problem) throw new TypeError(`a key in ${path} holds ${problem}`);
          const child = (value as Record<string, unknown>)[key];
          // JSON.stringify drops undefined properties; that is the expected JSON meaning, so allow it.
          if (child !== undefined) checkJson(child, `${path}.${key}`, ancestors);
        }
      } else {
        throw new TypeError(
          `${path} is ${describe(value)}; only plain objects, arrays and primitives are JSON`,
        );
      }
      ancestors.delete(value);
      return;
    }
    default:
      throw new TypeError(`${path} is ${describe(value)}, which JSON cannot represent`);
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") {
    const ctor = (Object.getPrototypeOf(value) as { constructor?: { name?: string } } | null)?.constructor
      ?.name;
    return ctor ? `an instance of ${ctor}` : "an object";
  }
  if (typeof value === "bigint") return "a BigInt";
  return `a ${typeof value}`;
}

/** The raw input every publish variant funnels into. */
export interface EventInput {
  type: unknown;
  detail?: unknown;
  privateData?: unknown;
}

/**
 * Validates and serialises one event.
 *
 * @throws TypeError on a bad type, detail, privateData or user id.
 */
export function prepareEvent(
  input: EventInput,
  scope: Scope,
  userId: UserId | null | undefined,
): PreparedEvent {
  if (typeof input !== "object" || input === null) {
    throw new TypeError(`publish takes an object like { type, detail }, got ${describe(input)}`);
  }
  const type = validateType(input.type);
  let user: string | null = null;
  if (scope === "user") {
    if (userId === undefined || userId === null) {
      throw new TypeError("publish needs a userId; use publishGlobal for an event every connection receives");
    }
    user = normalizeUserId(userId);
  } else if (scope === "system" && userId !== undefined && userId !== null) {
    user = normalizeUserId(userId);
  } else if (scope === "global" && (input as { userId?: unknown }).userId != null) {
    // A userId here means the caller meant one user: sending it to everyone would leak it.
    throw new TypeError(
      "publishGlobal sends to every connection and takes no userId; use publish for one user",
    );
  }
  const detailJson = input.detail === undefined ? "{}" : serializeObject(input.detail, "detail");
  const privateDataJson =
    input.privateData === undefined || input.privateData === null
      ? null
      : serializeObject(input.privateData, "privateData");
  return { type, scope, userId: user, detailJson, privateDataJson };
}

/**
 * The NOTIFY payload of an event published without storage: the whole event as compact JSON, with a
 * random id and the publishing process's clock.
 *
 * @throws RangeError when the payload would reach the 8000-byte NOTIFY limit (UTF-8 bytes).
 */
export function ephemeralPayload(event: PreparedEvent): string {
  const payload = `{"id":${JSON.stringify(randomUUID())},"type":${JSON.stringify(event.type)},"scope":"${event.scope}","userId":${JSON.stringify(event.userId)},"detail":${event.detailJson},"createdAt":"${new Date().toISOString()}"}`;
  const bytes = Buffer.byteLength(payload, "utf8");
  if (bytes >= NOTIFY_LIMIT_BYTES) {
    throw new RangeError(
      `event "${event.type}" needs a ${bytes}-byte NOTIFY payload, over PostgreSQL's limit of ${NOTIFY_LIMIT_BYTES - 1} bytes; with storage: false the whole event must fit, so shrink detail or turn storage on`,
    );
  }
  return payload;
}
