/**
 * This process's counters, kept by the parts that do the work and read by `realtime.stats()`. Plain
 * fields, incremented on the hot path: no allocation, no lock.
 */
export class Counters {
  /** Events this process routed (after `onReceive`), live and caught up. */
  received = 0;
  /** Event frames written to streams, live and replayed. */
  sent = 0;
  /** Events a hook dropped (`onReceive` for the process, `beforeSend` for one stream). */
  dropped = 0;
  reconnects = 0;
  lastReconnectAt: Date | null = null;
  replaysRunning = 0;
  replaysTotal = 0;
  resets = 0;
}
