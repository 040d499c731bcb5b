import { adminFor, dispatch, type Host } from "../dispatch.js";
import { createWebResponder } from "../sinks/web.js";

/**
 * The Fetch API handler of a realtime instance (`realtime.handler`): our routes, the admin page once
 * mounted, else `404`.
 */
export function createFetchHandler(host: Host): (request: Request) => Promise<Response> {
  return async (request) => {
    const url = new URL(request.url);
    const admin = adminFor(host, url.pathname);
    if (admin) return admin.handle(request);
    const { responder, response } = createWebResponder(request.signal);
    const ours = dispatch(
      host,
      { method: request.method, url, header: (name) => request.headers.get(name) },
      responder,
      () => host.authenticate?.(request) ?? null,
    );
    if (!ours)
      return new Response("Not found\n", {
        status: 404,
        headers: { "Content-Type": "text/plain; charset=utf-8" },
      });
    return response;
  };
}
