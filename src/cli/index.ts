#!/usr/bin/env node
// The bin entry, `npx pgrealtime <command>`: dispatches to one file per command.
import { createRequire } from "node:module";
import { parseArgs } from "node:util";
import { UsageError, usageErrorOf } from "./args.js";
import { events } from "./events.js";
import { listen } from "./listen.js";
import { migrate } from "./migrate.js";
import { prune } from "./prune.js";
import { publish } from "./publish.js";
import { replay } from "./replay.js";
import { type Command, execute, print } from "./runtime.js";
import { show } from "./show.js";
import { status } from "./status.js";

const COMMANDS: readonly Command[] = [migrate, listen, publish, events, show, replay, prune, status];

const USAGE = `Usage: pgrealtime <command> [options]

Commands:
${COMMANDS.map((command) => `  ${command.name.padEnd(10)}${command.summary}`).join("\n")}

Run pgrealtime <command> --help for a command's options; every command takes --schema NAME and
--table NAME.

Options:
  -h, --help      print this help
  -v, --version   print the version of pgrealtime

Reads the database from DATABASE_URL (postgres://user:password@host:5432/database).`;

/**
 * The package's own version. Read at run time, relative to this file: `src/cli/index.ts` and
 * `dist/cli/index.js` both sit two levels below package.json (a JSON import would reach outside rootDir).
 */
function packageVersion(): string {
  const require = createRequire(import.meta.url);
  return (require("../../package.json") as { version: string }).version;
}

/** The command line without a command: `--help`, `--version`, or a usage error. */
const topLevel: Command = {
  name: "pgrealtime",
  summary: "",
  usage: USAGE,
  async run(argv) {
    const { values, positionals } = (() => {
      try {
        return parseArgs({
          args: argv,
          allowPositionals: true,
          options: {
            help: { type: "boolean", short: "h", default: false },
            version: { type: "boolean", short: "v", default: false },
          },
        });
      } catch (error) {
        throw usageErrorOf(error);
      }
    })();
    if (values.version) {
      print(packageVersion());
      return 0;
    }
    if (values.help) {
      print(USAGE);
      return 0;
    }
    if (positionals.length === 0) throw new UsageError("which command? (see the list below)");
    throw new UsageError(`unknown command "${positionals.join(" ")}"`);
  },
};

const [name, ...rest] = process.argv.slice(2);
const command = COMMANDS.find((candidate) => candidate.name === name);
process.exitCode = await (command ? execute(command, rest) : execute(topLevel, process.argv.slice(2)));
