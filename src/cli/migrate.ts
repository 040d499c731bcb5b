import { COMMON_USAGE, parseCommand } from "./args.js";
import { type Command, print, withRealtime } from "./runtime.js";

const USAGE = `Usage: pgrealtime migrate [--dry-run] [--schema NAME] [--table NAME]

Creates or upgrades the tables (safe to run from several processes at once).

Options:
  --dry-run       print the SQL that would run, and change nothing

${COMMON_USAGE}`;

/** `pgrealtime migrate [--dry-run]`. */
export const migrate: Command = {
  name: "migrate",
  summary: "create or upgrade the tables (--dry-run prints the SQL)",
  usage: USAGE,
  async run(argv) {
    const { values } = parseCommand(argv, { "dry-run": { type: "boolean", default: false } });
    const dryRun = values["dry-run"];
    const result = await withRealtime(values, (realtime) => realtime.migrate({ dryRun }));
    if (dryRun) print(result.sql || "-- up to date: nothing to apply");
    else
      print(
        result.applied.length
          ? `Applied migrations ${result.applied.join(", ")}.`
          : "Up to date: nothing to apply.",
      );
    return 0;
  },
};
