import { describe, expect, it, type TestContext } from "vitest";
import { cli, startCli } from "./support/cli.js";
import { migratedRealtime } from "./support/server.js";

const LISTENING = /^pgrealtime: listening to (\S+) \(Ctrl-C to stop\)\n/;

// Concurrent tests: each registers its clean-up on its own context, never the global onTestFinished.
type Finished = TestContext["onTestFinished"];

/** A migrated schema with an instance to publish from, closed when the test ends. */
async function schemaWithPublisher(onTestFinished: Finished) {
  const { realtime, schema } = await migratedRealtime();
  onTestFinished(() => realtime.close());
  return { realtime, schema };
}

/** Starts `listen` and waits until it says it listens; killed when the test ends, if still running. */
async function listening(onTestFinished: Finished, args: string[]) {
  const listen = startCli(["listen", ...args]);
  onTestFinished(() => {
    listen.child.kill("SIGKILL");
  });
  await listen.waitFor(LISTENING, "stderr");
  return listen;
}

describe.concurrent("pgrealtime listen", () => {
  it("receives, one JSON object per line, what a publish process sends; Ctrl-C exits 0", async ({
    onTestFinished,
  }) => {
    const { schema } = await schemaWithPublisher(onTestFinished);
    const listen = await listening(onTestFinished, ["--json", "--schema", schema]);
    expect(listen.stderr).toMatch(new RegExp(`listening to ${schema}\\.events`));

    const sent = await cli([
      "publish",
      "--schema",
      schema,
      "--type",
      "task_complete",
      "--user",
      "42",
      "--detail",
      '{"taskId": 123, "title": "<b>done</b>"}',
      "--private",
      '{"secret": "never shown"}',
      "--json",
    ]);
    expect(sent).toMatchObject({ code: 0, stderr: "" });
    const published = JSON.parse(sent.stdout);
    expect(published).toMatchObject({ type: "task_complete", scope: "user", userId: "42" });

    const [line] = await listen.waitFor(/^.*\n/);
    expect(JSON.parse(line)).toEqual(published);
    expect(line).not.toContain("never shown");

    listen.child.kill("SIGINT");
    const run = await listen.exited;
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(new RegExp(`${LISTENING.source}$`));
    expect(run.stdout.split("\n")).toHaveLength(2);
  });

  it("filters by --type and --scope, prints people's lines, and exits 0 on SIGTERM", async ({
    onTestFinished,
  }) => {
    const { realtime, schema } = await schemaWithPublisher(onTestFinished);
    const listen = await listening(onTestFinished, [
      "--type",
      "keep",
      "--scope",
      "system",
      "--schema",
      schema,
    ]);
    await realtime.publishSystem({ type: "drop", userId: 3 });
    await realtime.publishGlobal({ type: "keep", detail: { scope: "global" } });
    await realtime.publish({ userId: 3, type: "keep" });
    const kept = await realtime.publishSystem({ type: "keep", userId: 3, detail: { n: 1 } });
    const second = await realtime.publishSystem({ type: "keep", detail: { n: 2 } });

    await listen.waitFor(new RegExp(`^${second.id} `, "m"));
    expect(listen.stdout).toBe(
      `${kept.id}  ${kept.createdAt.toISOString()}  system  3  keep  {"n":1}\n` +
        `${second.id}  ${second.createdAt.toISOString()}  system  -  keep  {"n":2}\n`,
    );
    listen.child.kill("SIGTERM");
    expect((await listen.exited).code).toBe(0);
  });

  it("exits 0 and says nothing when its reader goes away (EPIPE)", async ({ onTestFinished }) => {
    const { realtime, schema } = await schemaWithPublisher(onTestFinished);
    const listen = await listening(onTestFinished, ["--json", "--schema", schema]);
    await realtime.publishGlobal({ type: "first" });
    await listen.waitFor(/"type":"first"/);
    // What `pgrealtime listen | head -1` does once head has its line.
    listen.child.stdout?.destroy();
    // The next writes meet a closed pipe; one would do, a few make sure one lands after the close.
    for (let n = 0; n < 3; n += 1) await realtime.publishGlobal({ type: "after", detail: { n } });
    const run = await listen.exited;
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(new RegExp(`${LISTENING.source}$`));
  });
});
