import { describe, expect, it } from "vitest";
import { cli } from "./support/cli.js";
import { freshSchema } from "./support/database.js";

const COMMANDS = ["migrate", "listen", "publish", "events", "show", "replay", "prune", "status"];

// Port 1 on localhost refuses at once: a command that reached for the database would fail there (exit
// 1), so exit 2 also shows that bad arguments are refused before anything is connected.
const UNREACHABLE = { DATABASE_URL: "postgres://postgres@127.0.0.1:1/postgres" };

describe.concurrent("every command's --help", () => {
  it.each(COMMANDS)("%s --help prints its own usage with the common options, exit 0", async (command) => {
    const run = await cli([command, command === "show" ? "-h" : "--help"], { DATABASE_URL: undefined });
    expect(run).toMatchObject({ code: 0, stderr: "" });
    expect(run.stdout).toMatch(new RegExp(`^Usage: pgrealtime ${command} `));
    expect(run.stdout).toContain("--schema NAME");
    expect(run.stdout).toContain("--table NAME");
    expect(run.stdout).toContain("DATABASE_URL");
  });

  it("the top-level --help lists every command", async () => {
    const run = await cli(["--help"], { DATABASE_URL: undefined });
    for (const command of COMMANDS) expect(run.stdout).toMatch(new RegExp(`^  ${command} `, "m"));
    expect(run.stdout).not.toContain("--topic");
  });
});

/** [arguments, the cause the first line of stderr names]. */
const BAD_ARGUMENTS: [string[], RegExp][] = [
  [["listen", "--scope", "room"], /--scope must be one of user, global, system, got "room"/],
  [["listen", "--type", "a b"], /--type: type must be 1 to 100 characters/],
  // Topics come with their own issue; until then --topic is an unknown option like any other.
  [["listen", "--topic", "doc:1"], /Unknown option '--topic'/],
  [["listen", "now"], /unexpected argument "now"/],
  [["publish", "--global"], /missing --type T/],
  [["publish", "--type", "note"], /choose who it is for: --user U, --global or --system/],
  [["publish", "--type", "note", "--global", "--user", "7"], /--global goes alone/],
  [["publish", "--type", "note", "--global", "--system"], /--global goes alone/],
  [["publish", "--type", "note", "--user", ""], /--user must be a string of 1 to 200 characters/],
  [["publish", "--type", "note", "--global", "--detail", "{oops"], /--detail is not valid JSON/],
  [["publish", "--type", "note", "--global", "--detail", "[1]"], /--detail must be a JSON object/],
  [["publish", "--type", "note", "--global", "--private", "42"], /--private must be a JSON object/],
  [["publish", "--type", "connected", "--global"], /--type: type "connected" is reserved/],
  [["publish", "--type", "note", "--global", "--json=yes"], /Option '--json' does not take an argument/],
  [["events", "--before", "abc"], /--before must be an event id \(decimal digits\), got "abc"/],
  [["events", "--after", "-1"], /Option '--after' argument is ambiguous\. .* use '--after=-XYZ'/],
  [["events", "--limit", "5000"], /--limit must be a whole number from 1 to 1000, got "5000"/],
  [["events", "--limit"], /Option '--limit <value>' argument missing/],
  [["events", "--from", "yesterday"], /--from must be an ISO 8601 time/],
  [["events", "--to", "2026-02-30T25:00"], /--to must be an ISO 8601 time/],
  [["events", "--status", "done"], /--status must be one of new, dispatched, sent, got "done"/],
  [["events", "--table", "bad-table"], /table must be a letter or "_" followed by/],
  [["show"], /missing event id/],
  [["show", "12", "13"], /unexpected event id "13"/],
  [["show", "12abc"], /<id> must be an event id \(decimal digits\), got "12abc"/],
  [["replay"], /missing event id/],
  [["replay", "1", "x"], /<id> must be an event id \(decimal digits\), got "x"/],
  [["prune"], /missing --older-than, e.g. --older-than 30d/],
  [["prune", "--older-than", "30"], /--older-than must be a duration like "30d", "12h" or "90m"/],
  [["prune", "--older-than", "1w"], /--older-than must be a duration/],
  [["prune", "--older-than", "1d", "--type", "a b"], /--type: type must be/],
  [["status", "--verbose"], /Unknown option '--verbose'/],
  [["status", "now"], /unexpected argument "now"/],
  [["migrate", "--schema", "1abc"], /schema must be a letter or "_"/],
];

describe.concurrent("bad arguments", () => {
  it.each(BAD_ARGUMENTS)("%j exits 2 with the cause, then the command's usage", async (args, cause) => {
    const run = await cli(args, UNREACHABLE);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe("");
    const [first, blank, usage] = run.stderr.split("\n");
    expect(first).toMatch(/^pgrealtime: /);
    expect(first).toMatch(cause);
    expect(blank).toBe("");
    expect(usage).toMatch(new RegExp(`^Usage: pgrealtime ${args[0]} `));
  });
});

/** Every command with arguments it takes, for the failures below. */
const VALID = [
  ["migrate"],
  ["listen"],
  ["publish", "--type", "note", "--global"],
  ["events"],
  ["show", "1"],
  ["replay", "1"],
  ["prune", "--older-than", "30d"],
  ["status"],
];

describe.concurrent("runtime failures", () => {
  it.each(VALID)(
    "%s exits 1 with the cause in one line, no stack, when the database is down",
    async (...args) => {
      const run = await cli(args, UNREACHABLE);
      expect(run).toEqual({ code: 1, stdout: "", stderr: "pgrealtime: connect ECONNREFUSED 127.0.0.1:1\n" });
    },
  );

  it.each(VALID.filter(([command]) => command !== "migrate"))(
    "%s exits 1 naming the migration on a schema that was never migrated",
    async (...args) => {
      const run = await cli([...args, "--schema", freshSchema("cli_unmigrated")]);
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(
        /^pgrealtime: .*(no pgrealtime tables|missing or out of date).*pgrealtime migrate/,
      );
      expect(run.stderr).not.toMatch(/\n\s+at /);
    },
  );
});
