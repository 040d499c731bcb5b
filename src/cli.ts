#!/usr/bin/env node
import { parseArgs } from "node:util";
import { createRealtime } from "./realtime.js";

const USAGE = `Usage: pgrealtime <command> [options]

Commands:
  migrate [--dry-run] [--schema NAME]   create or upgrade the events table (--dry-run prints the SQL)

Reads the database from DATABASE_URL.`;

async function main(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      "dry-run": { type: "boolean", default: false },
      schema: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  const [command, ...rest] = positionals;
  if (values.help || command === undefined) {
    console.log(USAGE);
    return values.help ? 0 : 2;
  }
  if (command !== "migrate" || rest.length > 0) {
    console.error(`pgrealtime: unknown command "${positionals.join(" ")}"\n\n${USAGE}`);
    return 2;
  }
  const connectionString = process.env.DATABASE_URL;
  if (!connectionString) {
    console.error("pgrealtime: set DATABASE_URL, e.g. DATABASE_URL=postgres://user@localhost:5432/app");
    return 2;
  }
  const realtime = createRealtime({ connectionString, schema: values.schema });
  try {
    const result = await realtime.migrate({ dryRun: values["dry-run"] });
    if (values["dry-run"]) {
      console.log(result.sql || "-- up to date: nothing to apply");
    } else {
      console.log(
        result.applied.length
          ? `Applied migrations ${result.applied.join(", ")}.`
          : "Up to date: nothing to apply.",
      );
    }
    return 0;
  } finally {
    await realtime.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(`pgrealtime: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  },
);
