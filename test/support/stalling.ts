import net from "node:net";

/**
 * A raw-socket SSE reader that can stop reading, as a suspended tab or a stuck proxy does. Resolves
 * once the server has registered the stream (its `connected` event arrived).
 */
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

  /** Waits until the received text holds `needle`; fails after `timeoutMs`. */
  const waitFor = (needle: string, timeoutMs = 15_000) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`the stalling reader did not receive ${JSON.stringify(needle)} in ${timeoutMs} ms`));
      }, timeoutMs);
      const check = () => {
        if (!text.includes(needle)) return;
        clearTimeout(timer);
        waiters.delete(check);
        resolve();
      };
      waiters.add(check);
      check();
    });

  await waitFor("event: connected\n");
  return {
    seen: (id: string) => waitFor(`\ndata: {"id":"${id}",`),
    pause: () => socket.pause(),
    destroy: () => socket.destroy(),
  };
}
