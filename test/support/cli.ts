import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { databaseUrl } from "./database.js";

/** The built CLI, as `npx pgrealtime` runs it from an installed package (`npm run build` first). */
export const CLI = fileURLToPath(new URL("../../dist/cli/index.js", import.meta.url));

/** How a CLI run ended: `code` is `null` when it was killed. */
export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A running CLI process, its output as it arrives, and its end. */
export interface Running {
  child: ChildProcess;
  readonly stdout: string;
  readonly stderr: string;
  /** Resolves once stdout (or stderr) matches `pattern`; rejects if the process ends first. */
  waitFor(pattern: RegExp, stream?: "stdout" | "stderr"): Promise<RegExpMatchArray>;
  exited: Promise<Run>;
}

/** The environment of a run: `DATABASE_URL` is the run's database unless `env` says otherwise (`undefined` removes it). */
function environment(env: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const full: Record<string, string | undefined> = { ...process.env, DATABASE_URL: databaseUrl(), ...env };
  for (const [name, value] of Object.entries(full)) if (value === undefined) delete full[name];
  return full;
}

/**
 * Starts the CLI with `args`. A process still running after `timeoutMs` is killed (`code: null`), so a
 * hang fails its test rather than the run.
 */
export function startCli(
  args: string[],
  env: Record<string, string | undefined> = {},
  timeoutMs = 20_000,
): Running {
  return startScript(CLI, args, env, timeoutMs);
}

/** Starts the Node script `file` (an example app) with `args`, as {@link startCli} starts the CLI. */
export function startScript(
  file: string,
  args: string[],
  env: Record<string, string | undefined> = {},
  timeoutMs = 20_000,
): Running {
  const child = spawn(process.execPath, [file, ...args], {
    env: environment(env),
    stdio: ["ignore", "pipe", "pipe"],
  });
  const output = { stdout: "", stderr: "" };
  const waiters = new Set<() => void>();
  for (const name of ["stdout", "stderr"] as const) {
    child[name]?.setEncoding("utf8").on("data", (text: string) => {
      output[name] += text;
      for (const check of [...waiters]) check();
    });
  }
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const exited = new Promise<Run>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      for (const check of [...waiters]) check();
      resolve({ code, ...output });
    });
  });
  let ended = false;
  void exited.then(() => {
    ended = true;
  });
  return {
    child,
    get stdout() {
      return output.stdout;
    },
    get stderr() {
      return output.stderr;
    },
    waitFor(pattern, stream = "stdout") {
      return new Promise((resolve, reject) => {
        const check = () => {
          const match = output[stream].match(pattern);
          if (match) {
            waiters.delete(check);
            resolve(match);
          } else if (ended || child.exitCode !== null || child.signalCode !== null) {
            waiters.delete(check);
            reject(
              new Error(
                `the CLI ended (${child.exitCode ?? child.signalCode}) before ${stream} matched ${pattern}:\n${output.stdout}\n${output.stderr}`,
              ),
            );
          }
        };
        waiters.add(check);
        check();
      });
    },
    exited,
  };
}

/** Runs the CLI to its exit (see {@link startCli}). */
export function cli(args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  return startCli(args, env).exited;
}
