// The storage-off intake: events and commands travel whole in the notifications, so each is verified
// (channel.ts), de-duplicated for as long as a replay could still pass its age check, and routed in
// arrival order while `onReceive` runs at once.
import { decodeEphemeral, type EphemeralMessage, SIGNED_MAX_AGE_MS, SIGNED_PREFIX } from "./channel.js";
import type { Hooks } from "./hooks.js";
import type { RowMeta } from "./router.js";
import type { Logger, RealtimeEvent } from "./types.js";

/** Ids remembered at most, each for as long as a signed message is accepted. */
const RECENT_IDS = 1_000_000;
/** Clocks of publishing processes may run this far behind ours. */
const CLOCK_SKEW_MS = 1_000;
/** At most one warning this often about payloads whose signature does not verify. */
const WARN_EVERY_MS = 60_000;

export interface EphemeralOptions {
  secret: string | null;
  logger: Logger;
  hooks: Hooks;
  route(event: RealtimeEvent, row: RowMeta | null): void;
  disconnect(userId: string): void;
  isClosed(): boolean;
}

export class EphemeralIntake {
  /** Ids seen, with when they stop mattering (a replay after that is refused by its age). */
  private readonly recent = new Map<string, number>();
  private listeningSince = 0;
  private lastSignatureWarning = 0;
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly options: EphemeralOptions) {}

  /** The first LISTEN: nothing sent before it can arrive, except as a replay. */
  started(): void {
    this.listeningSince = Date.now();
  }

  notification(payload: string): void {
    const message = decodeEphemeral(payload, this.options.secret);
    if (message === null) {
      this.ignored(payload);
      return;
    }
    const createdAt = message.kind === "event" ? message.event.createdAt : message.createdAt;
    if (this.options.secret !== null && createdAt.getTime() < this.listeningSince - CLOCK_SKEW_MS) return;
    this.accept(message);
  }

  /** A payload that is not ours; one whose signature fails is worth a (rare) warning: secrets may differ. */
  private ignored(payload: string): void {
    const { logger, secret } = this.options;
    const now = Date.now();
    if (
      secret !== null &&
      payload.startsWith(SIGNED_PREFIX) &&
      now - this.lastSignatureWarning >= WARN_EVERY_MS
    ) {
      this.lastSignatureWarning = now;
      logger.warn(
        { payload: payload.slice(0, 120) },
        "pgrealtime: ignored a signed notification whose signature does not verify; if it came from your own processes, their secret differs from this one's",
      );
      return;
    }
    logger.debug({ payload: payload.slice(0, 200) }, "pgrealtime: ignored a notification that is not ours");
  }

  /** A storage-off message: hooks start at once, routing keeps arrival order. */
  private accept(message: EphemeralMessage): void {
    const id = message.kind === "event" ? message.event.id : message.id;
    const now = Date.now();
    if (this.recent.has(id)) return;
    this.recent.set(id, now + SIGNED_MAX_AGE_MS + CLOCK_SKEW_MS);
    // Oldest first: forget what a replay could no longer pass the age check with.
    for (const [old, until] of this.recent) {
      if (until > now && this.recent.size <= RECENT_IDS) break;
      this.recent.delete(old);
    }
    if (message.kind === "disconnect") {
      this.chain = this.chain.then(() => this.options.disconnect(message.userId));
      return;
    }
    const accepted = this.options.hooks.receive(message.event);
    this.chain = this.chain.then(async () => {
      const event = await accepted;
      if (event && !this.options.isClosed()) this.options.route(event, null);
    });
  }
}
