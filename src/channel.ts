// The one NOTIFY channel's message formats, both ways. Any role that can connect may NOTIFY any channel,
// so nothing read here is trusted by default:
// - with storage on, a notification only wakes the receiver, which reads the table itself;
// - with storage off, events and commands travel whole, and option `secret` signs them (HMAC-SHA256);
// - probes carry a random nonce that only the probing listener knows.
import { createHmac, randomUUID, timingSafeEqual } from "node:crypto";
import { isPlainObject, normalizeUserId, validateType } from "./event.js";
import type { JsonObject, RealtimeEvent, Scope } from "./types.js";

/** NOTIFY refuses payloads of 8000 bytes or more. */
export const NOTIFY_LIMIT_BYTES = 8000;
export const SIGNED_PREFIX = "s1.";
const MAC_LENGTH = 43;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** Signed messages older than this (or this far in the future) are refused as replays. */
export const SIGNED_MAX_AGE_MS = 5 * 60_000;
const EVENT_KEYS = ["k", "id", "type", "scope", "userId", "detail", "createdAt"];
const DISCONNECT_KEYS = ["k", "id", "userId", "createdAt"];

/** Notifications of this prefix are probes, from this process or another: never events. */
export const PROBE_PREFIX = '{"k":"probe",';

/** The payload of a probe: sent by a listener to itself to prove notifications arrive. */
export function probePayload(nonce: string): string {
  return `${PROBE_PREFIX}"nonce":"${nonce}"}`;
}

/**
 * The payload the publish statement builds in SQL for a stored event: the id, for operators reading the
 * channel. Receivers never use it: they read the table.
 */
export const HINT_SQL = (idColumn: string) => `json_build_object('k', 'hint', 'id', ${idColumn}::text)::text`;

/** What travels with storage off: a whole event, or a command for every process. */
export type EphemeralMessage =
  | { kind: "event"; event: RealtimeEvent }
  | { kind: "disconnect"; id: string; userId: string; createdAt: Date };

/**
 * The NOTIFY payload of an event published without storage (a random id, this process's clock).
 *
 * @throws RangeError when the payload would reach the 8000-byte NOTIFY limit (UTF-8 bytes).
 */
export function encodeEvent(
  event: { type: string; scope: Scope; userId: string | null; detailJson: string },
  secret: string | null,
): { payload: string; id: string; createdAt: Date } {
  const id = randomUUID();
  const createdAt = new Date();
  const json = `{"k":"event","id":"${id}","type":${JSON.stringify(event.type)},"scope":"${event.scope}","userId":${JSON.stringify(event.userId)},"detail":${event.detailJson},"createdAt":"${createdAt.toISOString()}"}`;
  const payload = sign(json, secret);
  const bytes = Buffer.byteLength(payload, "utf8");
  if (bytes >= NOTIFY_LIMIT_BYTES) {
    throw new RangeError(
      `event "${event.type}" needs a ${bytes}-byte NOTIFY payload, over PostgreSQL's limit of ${NOTIFY_LIMIT_BYTES - 1} bytes; with storage: false the whole event must fit, so shrink detail or turn storage on`,
    );
  }
  return { payload, id, createdAt };
}

/** The NOTIFY payload of `disconnectUser` without storage. */
export function encodeDisconnect(userId: string, secret: string | null): string {
  const json = `{"k":"disconnect","id":"${randomUUID()}","userId":${JSON.stringify(userId)},"createdAt":"${new Date().toISOString()}"}`;
  return sign(json, secret);
}

/**
 * Reads a storage-off payload strictly: with a secret, only a valid signature of a recent message;
 * always, only the exact shape this module writes (a UUID id, a valid and unreserved type, a known
 * scope, a valid user id, a plain-object detail). `null` for anything else.
 */
export function decodeEphemeral(
  payload: string,
  secret: string | null,
  now = Date.now(),
): EphemeralMessage | null {
  const json = verify(payload, secret);
  if (json === null) return null;
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    return null;
  }
  if (!isPlainObject(raw) || typeof raw.id !== "string" || !UUID.test(raw.id)) return null;
  const createdAt = typeof raw.createdAt === "string" ? new Date(raw.createdAt) : new Date(Number.NaN);
  if (Number.isNaN(createdAt.getTime())) return null;
  if (secret !== null && Math.abs(now - createdAt.getTime()) > SIGNED_MAX_AGE_MS) return null;
  try {
    if (raw.k === "disconnect" && hasOnly(raw, DISCONNECT_KEYS)) {
      return { kind: "disconnect", id: raw.id, userId: normalizeUserId(raw.userId), createdAt };
    }
    if (raw.k === "event" && hasOnly(raw, EVENT_KEYS))
      return { kind: "event", event: eventOf(raw, createdAt) };
  } catch {
    // A bad field: not a message of ours.
  }
  return null;
}

function eventOf(raw: Record<string, unknown>, createdAt: Date): RealtimeEvent {
  const scope = raw.scope;
  if (scope !== "user" && scope !== "global" && scope !== "system") throw new TypeError("scope");
  const userId = raw.userId === null ? null : normalizeUserId(raw.userId);
  if ((scope === "user") !== (userId !== null) && scope !== "system") throw new TypeError("userId");
  if (!isPlainObject(raw.detail)) throw new TypeError("detail");
  return {
    id: raw.id as string,
    type: validateType(raw.type),
    scope,
    userId,
    detail: raw.detail as JsonObject,
    createdAt,
  };
}

function hasOnly(raw: Record<string, unknown>, keys: readonly string[]): boolean {
  return Object.keys(raw).every((key) => keys.includes(key));
}

function mac(json: string, secret: string): string {
  return createHmac("sha256", secret).update(json).digest("base64url");
}

function sign(json: string, secret: string | null): string {
  return secret === null ? json : `${SIGNED_PREFIX}${mac(json, secret)}.${json}`;
}

/** The JSON of a payload whose signature holds (any JSON without a secret); `null` otherwise. */
function verify(payload: string, secret: string | null): string | null {
  if (secret === null) return payload.startsWith(SIGNED_PREFIX) ? null : payload;
  if (!payload.startsWith(SIGNED_PREFIX) || payload[SIGNED_PREFIX.length + MAC_LENGTH] !== ".") return null;
  const given = Buffer.from(payload.slice(SIGNED_PREFIX.length, SIGNED_PREFIX.length + MAC_LENGTH));
  const json = payload.slice(SIGNED_PREFIX.length + MAC_LENGTH + 1);
  const expected = Buffer.from(mac(json, secret));
  return given.length === expected.length && timingSafeEqual(given, expected) ? json : null;
}
