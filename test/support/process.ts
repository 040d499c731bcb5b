import { type ChildProcess, execFile } from "node:child_process";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** Runs a TypeScript file in a separate Node process; resolves to its stdout, rejects on a non-zero exit. */
export function runTs(file: URL, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ["--import", "tsx", fileURLToPath(file), ...args],
      { cwd: ROOT, timeout: 30_000 },
      (error, stdout, stderr) => (error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout)),
    );
  });
}

/**
 * A spawned server process once it printed `port <n>` on stdout: its port, and what it wrote to stderr so
 * far (for failure messages). Rejects when it exits first, with that stderr.
 */
export function listeningPort(
  child: ChildProcess,
  what: string,
): { port: Promise<number>; stderr(): string } {
  let stderr = "";
  child.stderr?.setEncoding("utf8").on("data", (text: string) => {
    stderr += text;
  });
  const port = new Promise<number>((resolve, reject) => {
    let out = "";
    child.stdout?.setEncoding("utf8").on("data", (text: string) => {
      out += text;
      const match = /port (\d+)/.exec(out);
      if (match) resolve(Number(match[1]));
    });
    child.once("exit", (code) => reject(new Error(`${what} exited (${code}) before listening: ${stderr}`)));
  });
  return { port, stderr: () => stderr };
}
