// The reference model of delivery, for the property-based test (test/model.test.ts): what each client
// and each subscriber must have received, given what was published, committed and rolled back, and
// what each stream was entitled to see.
import type { ResumingClient } from "./resuming.js";

/** One published event as the model knows it. */
export interface Published {
  id: string;
  scope: "user" | "global" | "system";
  userId: string | null;
  /** When its publish call started (ms, this process's clock). */
  insertedAt: number;
  /** When its transaction's commit had returned; `null` while open; `Infinity` when rolled back. */
  committedAt: number | null;
}

/** The identity a stream URL signs in as (`?user=`), or `null` for anonymous. */
export function identityOf(url: string): string | null {
  return new URL(url).searchParams.get("user");
}

const committed = (event: Published) => event.committedAt !== null && Number.isFinite(event.committedAt);

/**
 * Whether `ids` keeps the order every reader must see: an event that committed before another was
 * written comes first. Returns a description of the first violation, or `null`.
 */
export function orderViolation(ids: string[], published: Map<string, Published>): string | null {
  const seen = ids.map((id) => published.get(id)).filter((e): e is Published => e !== undefined);
  for (let i = 0; i < seen.length; i++) {
    for (let j = i + 1; j < seen.length; j++) {
      const early = seen[i] as Published;
      const late = seen[j] as Published;
      if ((late.committedAt as number) < early.insertedAt) {
        return `${late.id} committed before ${early.id} was written, yet came after it`;
      }
    }
  }
  return null;
}

/** What is wrong with what a subscribe handler got: every committed event of every scope, once, in order. */
export function subscriberProblems(name: string, ids: string[], published: Map<string, Published>): string[] {
  const problems: string[] = [];
  const unique = new Set(ids);
  if (unique.size !== ids.length) problems.push(`${name}: ${ids.length - unique.size} duplicate(s)`);
  for (const id of ids) {
    const event = published.get(id);
    if (event && !committed(event)) problems.push(`${name}: got ${id}, which was rolled back`);
  }
  const missing = [...published.values()].filter((e) => committed(e) && !unique.has(e.id)).map((e) => e.id);
  if (missing.length > 0) problems.push(`${name}: missing ${missing.join(",")}`);
  const order = orderViolation(ids, published);
  if (order) problems.push(`${name}: ${order}`);
  return problems;
}

/**
 * What is wrong with what one client got. Never: an event its stream's identity may not see, a
 * rolled-back or system event, an event twice on one connection. Always, after its own de-dup: every
 * committed event its home identity may see, in order, except those committed before a reset it was
 * allowed to get (`identity-changed`, after it changed identity): a reset tells the app to reload.
 */
export function clientProblems(
  name: string,
  client: ResumingClient,
  home: string | null,
  switchedIdentity: boolean,
  published: Map<string, Published>,
): string[] {
  const problems: string[] = [];
  for (const { url, ids } of client.connections) {
    const identity = identityOf(url);
    if (new Set(ids).size !== ids.length) problems.push(`${name}: an event twice on one connection (${ids})`);
    for (const id of ids) {
      const event = published.get(id);
      if (!event) continue; // the fence and other test-only events
      if (!committed(event)) problems.push(`${name}: got ${id}, which was rolled back`);
      const may = event.scope === "global" || (event.scope === "user" && event.userId === identity);
      if (!may) problems.push(`${name}: got ${event.scope} event ${id} of ${event.userId} as ${identity}`);
    }
  }
  const allowed = switchedIdentity ? ["identity-changed"] : [];
  for (const reason of client.resets) {
    if (!allowed.includes(reason)) problems.push(`${name}: unexpected reset ${reason}`);
  }
  const excusedBefore = Math.max(0, ...client.resetTimes);
  const got = new Set(client.dispatched.map((e) => e.id));
  const missing = [...published.values()]
    .filter((e) => committed(e) && (e.scope === "global" || (e.scope === "user" && e.userId === home)))
    .filter((e) => (e.committedAt as number) >= excusedBefore && !got.has(e.id))
    .map((e) => e.id);
  if (missing.length > 0) problems.push(`${name}: missing ${missing.join(",")}`);
  const order = orderViolation(
    client.dispatched.map((e) => e.id),
    published,
  );
  if (order) problems.push(`${name}: ${order}`);
  return problems;
}
