// examples/fastify/server.js as a user runs it (after `npm run build`): a real process on an ephemeral
// port, a cookie-signed stream, an event published over HTTP, and SIGTERM with the stream still open.
import { fileURLToPath } from "node:url";
import { describe, expect, it, onTestFinished } from "vitest";
import { startScript } from "./support/cli.js";
import { freshSchema } from "./support/database.js";
import { SseClient } from "./support/sse.js";

const EXAMPLE = fileURLToPath(new URL("../examples/fastify/server.js", import.meta.url));

describe("examples/fastify", () => {
  it("serves its page and a cookie-signed stream, delivers a published event, and exits 0 on SIGTERM", async () => {
    const app = startScript(EXAMPLE, [], { PORT: "0", PGREALTIME_SCHEMA: freshSchema("fastify_example") });
    onTestFinished(() => void app.child.kill("SIGKILL"));
    const [, url] = await app.waitFor(/Server listening at (http:\/\/127\.0\.0\.1:\d+)/);

    const page = await fetch(`${url}/?user=alice`);
    const cookie = (page.headers.get("set-cookie") ?? "").split(";")[0] as string;
    expect(cookie).toBe("user=alice");
    expect(await page.text()).toContain('<script src="/realtime/client.js" defer></script>');
    const alice = await SseClient.open(`${url}/realtime/events`, { headers: { cookie } });
    const anonymous = await SseClient.open(`${url}/realtime/events`);
    onTestFinished(() => alice.close());
    onTestFinished(() => anonymous.close());
    expect(JSON.parse((await alice.next("connected")).data)).toEqual({ userId: "alice" });
    expect(JSON.parse((await anonymous.next("connected")).data)).toEqual({ userId: null });

    const published = await fetch(`${url}/hello?user=alice`, { method: "POST" });
    expect(published.status).toBe(200);
    const { id } = (await published.json()) as { id: string };
    await alice.waitForEvents(1);
    expect(alice.events.map((e) => [e.id, e.type])).toEqual([[id, "hello"]]);

    const global = (await (await fetch(`${url}/hello`, { method: "POST" })).json()) as { id: string };
    await anonymous.waitForEvents(1);
    expect(anonymous.events.map((e) => e.id)).toEqual([global.id]);

    app.child.kill("SIGTERM");
    const { code, stderr } = await app.exited;
    expect(stderr).toBe("");
    expect(code).toBe(0);
    await alice.until((c) => c.ended, "the stream to end with the app");
  });
});
