import { randomBytes } from "node:crypto";
import { inject } from "vitest";

/** Connection string of this run's own database (see global-setup.ts). */
export function databaseUrl(): string {
  return inject("databaseUrl");
}

let created = 0;

/**
 * A schema name no other test uses, for `createRealtime({ schema })`: its own tables and, because the NOTIFY
 * channel derives from the schema, its own notifications. Lower case, so it needs no quoting anywhere.
 *
 * @param prefix A hint for whoever reads the database: a letter, then letters, digits or underscores.
 */
export function freshSchema(prefix = "t"): string {
  const hint = prefix.toLowerCase().slice(0, 20);
  if (!/^[a-z][a-z0-9_]*$/.test(hint)) {
    throw new TypeError(
      `freshSchema: the prefix must be a letter followed by letters, digits or _: ${prefix}`,
    );
  }
  // Random across the worker processes, counted within one.
  created += 1;
  return `${hint}_${randomBytes(5).toString("hex")}_${created.toString(36)}`;
}
