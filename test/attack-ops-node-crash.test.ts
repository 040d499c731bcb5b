// Attacks on a plain node:http server running toNodeHandler with the admin mounted, the set-up the
// README shows (`http.createServer(toNodeHandler(realtime))`): no framework catches what the handler
// throws, so a synchronous throw there ends the whole process. Run in a child process, which the test
// watches.
import { type ChildProcess, spawn } from "node:child_process";
import net from "node:net";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { databaseUrl, freshSchema } from "./support/database.js";
import { listeningPort } from "./support/process.js";

const FIXTURE = fileURLToPath(new URL("./fixtures/admin-server.ts", import.meta.url));
const children: ChildProcess[] = [];

afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill("SIGKILL");
});

/** The fixture server in a child process, once it listens. */
async function startServer(): Promise<{ child: ChildProcess; port: number; stderr: () => string }> {
  const child = spawn(process.execPath, ["--import", "tsx", FIXTURE, databaseUrl(), freshSchema("crash")], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  const { port, stderr } = listeningPort(child, "server");
  return { child, port: await port, stderr };
}

/** Sends `request` as raw bytes and resolves to whatever came back before the socket closed. */
function raw(port: number, request: string): Promise<string> {
  return new Promise((resolve) => {
    let answer = "";
    const socket = net.connect(port, "127.0.0.1", () => socket.write(request));
    socket.setEncoding("utf8").on("data", (text: string) => {
      answer += text;
    });
    socket.on("error", () => resolve(answer));
    socket.on("close", () => resolve(answer));
  });
}

/** The server still answers a normal request, and is still running. */
async function stillServing(server: { child: ChildProcess; port: number; stderr: () => string }) {
  const response = await fetch(`http://127.0.0.1:${server.port}/realtime/admin/admin.css`).catch(
    (error: unknown) => error as Error,
  );
  expect(response instanceof Response ? response.status : String(response), server.stderr()).toBe(200);
  expect(server.child.exitCode).toBeNull();
}

describe("node:http with toNodeHandler and the admin", () => {
  it("attack: an unauthenticated TRACE to /realtime/admin does not crash the process", async () => {
    const server = await startServer();
    const answer = await raw(
      server.port,
      "TRACE /realtime/admin HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    );
    expect(answer).toMatch(/^HTTP\/1\.1 405 /);
    await stillServing(server);
  });

  it("attack: an absolute-form request target with an invalid URL does not crash the process", async () => {
    const server = await startServer();
    const answer = await raw(
      server.port,
      "GET http://a:99999/realtime/events HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    );
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    await stillServing(server);
  });

  it("attack: a protocol-relative path does not move the admin's request to another host", async () => {
    // `//evil.example/realtime/admin` is a path on our server; the Request the admin (and authorize)
    // sees must still name our host, or the Origin check compares against the attacker's.
    const server = await startServer();
    const answer = await raw(
      server.port,
      "POST //evil.example/realtime/admin/replay HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://evil.example\r\n" +
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 4\r\nConnection: close\r\n\r\nid=1",
    );
    // Not the admin's path at all (frameworks route it as `//evil.example/…`), so never the admin's request.
    expect(answer).toMatch(/^HTTP\/1\.1 404 /);
    await stillServing(server);
  });
});
