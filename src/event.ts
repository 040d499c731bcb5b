// Validation of everything that becomes part of an event: user ids, types, JSON details, and the keys of
// objects users pass in. Shared by the publish path, the hooks and the channel codec, so one rule holds
// at every edge.

const TYPE_PATTERN = /^[A-Za-z0-9_.-]{1,100}$/;
/**
 * Names the browser client dispatches itself, and `ping`, the heartbeat's own event: an application
 * event may never take one.
 */
export const RESERVED_TYPES: ReadonlySet<string> = new Set([
  "connected",
  "disconnected",
  "reset",
  "error",
  "ping",
]);
const MAX_USER_ID_LENGTH = 200;
/** Deeper JSON is refused: nothing legitimate nests this far, and PostgreSQL's parser has a stack too. */
const MAX_DEPTH = 100;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const MAX_EVENT_ID = 2n ** 63n - 1n;

/** Why PostgreSQL could not store this string as text, or `null` when it can. */
function unstorable(text: string): string | null {
  if (text.includes("\u0000")) return "the character U+0000, which PostgreSQL text cannot store";
  if (LONE_SURROGATE.test(text)) return "a lone UTF-16 surrogate, which is not valid Unicode";
  return null;
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

/** Whether `value` is a stored event id: decimal digits, within bigint. */
export function isEventId(value: unknown): value is string {
  return typeof value === "string" && /^[0-9]{1,19}$/.test(value) && BigInt(value) <= MAX_EVENT_ID;
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
 * Refuses keys a caller did not mean: a misspelt `client` must never publish outside the caller's
 * transaction, and a misspelt `detail` must never publish an empty event.
 *
 * @throws TypeError naming the unknown keys and the known ones.
 */
export function refuseUnknownKeys(value: object, known: readonly string[], what: string, noun = "key"): void {
  const unknown = Object.keys(value).filter((key) => !known.includes(key));
  if (unknown.length > 0) {
    throw new TypeError(
      `${what}: unknown ${noun} ${unknown.map((k) => JSON.stringify(k)).join(", ")}; the ${noun}s are ${known.join(", ")}`,
    );
  }
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
    case "object":
      if (value !== null) checkContainer(value, path, ancestors);
      return;
    default:
      throw new TypeError(`${path} is ${describe(value)}, which JSON cannot represent`);
  }
}

function checkContainer(value: object, path: string, ancestors: Set<object>): void {
  if (ancestors.has(value)) throw new TypeError(`${path} is a circular reference`);
  if (ancestors.size >= MAX_DEPTH) throw new TypeError(`${path} nests deeper than ${MAX_DEPTH} levels`);
  ancestors.add(value);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      if (value[i] === undefined) throw new TypeError(`${path}[${i}] is undefined, which JSON cannot hold`);
      checkJson(value[i], `${path}[${i}]`, ancestors);
    }
  } else if (isPlainObject(value)) {
    for (const key of Object.keys(value)) {
      const problem = unstorable(key);
      if (problem) throw new TypeError(`a key in ${path} holds ${problem}`);
      const child = value[key];
      // JSON.stringify drops undefined properties; that is the expected JSON meaning, so allow it.
      if (child !== undefined) checkJson(child, `${path}.${key}`, ancestors);
    }
  } else {
    throw new TypeError(`${path} is ${describe(value)}; only plain objects, arrays and primitives are JSON`);
  }
  ancestors.delete(value);
}

/** Whether `value` is an object literal (or a null-prototype object), not an array or class instance. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** A short description of a value's kind for error messages ("an array", "an instance of Date"). */
export function describe(value: unknown): string {
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
