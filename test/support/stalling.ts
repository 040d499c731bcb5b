import net from "node:net";

/** A raw-socket SSE reader that can stop reading, as a suspended tab or a stuck proxy does. */
export async function stallingReader(
  baseUrl: string,
  user: string | null,
  headers: Record<string, string> = {},
) {
  const url = new URL(`/realtime/events${user ? `?user=${user}` : ""}`, baseUrl);
  const extra = Object.entries(headers)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join("");
  const socket = net.connect(Number(url.port), url.hostname);
  await new Promise<void>((resolve) => socket.once("connect", resolve));
  socket.write(
    `GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\nAccept: text/event-stream\r\n${extra}\r\n`,
  );
  let text = "";
  const waiters = new Set<() => void>();
  socket.setEncoding("utf8");
  socket.on("data", (chunk: string) => {
    text += chunk;
    for (const waiter of [...waiters]) waiter();
  });
  socket.on("error", () => {});
  return {
    seen: (id: string) =>
      new Promise<void>((resolve) => {
        const check = () => {
          if (!text.includes(`\nid: ${id}\n`)) return;
          waiters.delete(check);
          resolve();
        };
        waiters.add(check);
        check();
      }),
    pause: () => socket.pause(),
    destroy: () => socket.destroy(),
  };
}
