import { isThenable } from "./router.js";
import type { Logger } from "./types.js";

/**
 * The application's observers of one instance: `on("error")`, `on("reconnect")` and the `onReset` of
 * `subscribe`. Each is called in isolation: one that throws (or rejects) is logged and stops neither the
 * others nor the caller.
 */
export class Observers {
  private readonly sets = {
    error: new Set<(value: unknown) => void>(),
    reconnect: new Set<(value: unknown) => void>(),
    reset: new Set<(value: unknown) => void>(),
  };

  constructor(private readonly logger: Logger) {}

  /**
   * Adds an observer; returns its remover.
   *
   * @throws TypeError for a non-function (`what` names the call in the message).
   */
  add(name: keyof Observers["sets"], observer: unknown, what: string): () => void {
    if (typeof observer !== "function") throw new TypeError(`${what} takes a function`);
    const set = this.sets[name];
    set.add(observer as (value: unknown) => void);
    return () => {
      set.delete(observer as (value: unknown) => void);
    };
  }

  notify(name: keyof Observers["sets"], value: unknown): void {
    const failed = (error: unknown) =>
      this.logger.error({ err: error }, `pgrealtime: a ${name} observer threw`);
    for (const observer of this.sets[name]) {
      try {
        const result: unknown = observer(value);
        if (isThenable(result)) result.then(undefined, failed);
      } catch (error) {
        failed(error);
      }
    }
  }
}
