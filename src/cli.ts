#!/usr/bin/env node
import { createRequire } from "node:module";
import { parseArgs } from "node:util";
import { createRealtime } from "./realtime.js";

const USAGE = `Usage: pgrealtime <command> [options]

Commands:
  migrate [--dry-run] [--schema NAME]   create or upgrade the events table (--dry-run prints the SQL)

Options:
  -h, --help      print this help
  -v, --version   print the version of pgrealtime

Reads the database from DATABASE_URL (postgres://user:password@host:5432/database).`;

/** The schemes node-postgres reads a connection string in. */
const SCHEMES = new Set(["postgres:", "postgresql:", "socket:"]);

/**
 * The package's own version. Read at run time, relative to this file: `src/cli.ts` and `dist/cli.js` both
 * sit one level below package.json (a JSON import would have to reach outside tsc's rootDir).
 */
function packageVersion(): string {
  const require = createRequire(import.meta.url);
  return (require("../package.json") as { version: string }).version;
}

/**
 * Whether node-postgres can read `value` as a connection string: a URL with a PostgreSQL scheme (an empty
 * host, `postgres://user@/db`, means the default socket), or a socket directory (`/var/run/postgresql db`).
 * Anything else it would turn into a relative URL and fail later with a misleading host name.
 */
function isConnectionUrl(value: string): boolean {
  if (value.startsWith("/")) return true;
  try {
    return SCHEMES.has(new URL(value.replace("@/", "@localhost/")).protocol);
  } catch {
    return false;
  }
}

function isParseArgsError(error: unknown): error is Error {
  const code = error instanceof Error ? (error as NodeJS.ErrnoException).code : undefined;
  return typeof code === "string" && code.startsWith("ERR_PARSE_ARGS_");
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      "dry-run": { type: "boolean", default: false },
      schema: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
      version: { type: "boolean", short: "v", default: false },
    },
  });
}

async function main(argv: string[]): Promise<number> {
  let args: ReturnType<typeof parse>;
  try {
    args = parse(argv);
  } catch (error) {
    // An unknown option, or one missing its value: a usage error, not a failure of the command.
    if (!isParseArgsError(error)) throw error;
    console.error(`pgrealtime: ${error.message}\n\n${USAGE}`);
    return 2;
  }
  const { positionals, values } = args;
  const [command, ...rest] = positionals;
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (values.version) {
    console.log(packageVersion());
    return 0;
  }
  if (command === undefined) {
    console.log(USAGE);
    return 2;
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
  // The value is never echoed: it may hold a password.
  if (!isConnectionUrl(connectionString)) {
    console.error(
      "pgrealtime: DATABASE_URL is not a PostgreSQL connection URL; expected postgres://user:password@host:5432/database",
    );
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
