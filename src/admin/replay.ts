// `POST {basePath}/admin/replay`: the only admin request that changes anything. Cross-site requests are
// refused before the body is read, the token after; then `realtime.replay(ids)` and a 303 to a GET.
import { crossSiteRefusal, tokenRefusal } from "./csrf.js";
import { type AdminContext, errorPage, eventUrl, seeOther } from "./layout.js";

/** A replay form is a token and at most a page of ids; anything larger is not one of ours. */
const MAX_FORM_BYTES = 64 * 1024;

/**
 * Replays the form's `id` fields. One id without a `return` field (the event page's button) goes on
 * to the new event's page; otherwise back to the list (its query in `return`) with a notice.
 */
export async function replayAction(context: AdminContext): Promise<Response> {
  const { request, logger } = context;
  const refusal = crossSiteRefusal(request);
  if (refusal) return refuse(context, refusal);
  const type = request.headers.get("content-type") ?? "";
  if (!type.toLowerCase().startsWith("application/x-www-form-urlencoded")) {
    return errorPage(
      context,
      415,
      "A replay is posted by the admin's own form (application/x-www-form-urlencoded).",
    );
  }
  const form = await readForm(request);
  if (!form) return errorPage(context, 413, `The form is over ${MAX_FORM_BYTES} bytes.`);
  const wrongToken = tokenRefusal(request, form);
  if (wrongToken) return refuse(context, wrongToken);

  const ids = form.getAll("id");
  if (ids.length === 0) return errorPage(context, 400, "Select at least one event to replay.");
  const replayed = await context.realtime.replay(ids);
  logger.info({ ids, replayIds: replayed.map((event) => event.id) }, "pgrealtime: admin replayed events");
  const back = form.get("return");
  const [only] = replayed;
  if (back === null && only && replayed.length === 1) return seeOther(eventUrl(context, only.id));
  // Only a query string goes back into the Location, so it can point nowhere but the list.
  const query = new URLSearchParams(back ?? "");
  query.set("replayed", replayed.map((event) => event.id).join(","));
  return seeOther(`${context.prefix}?${query}`);
}

function refuse(context: AdminContext, reason: string): Response {
  context.logger.warn({ reason }, "pgrealtime: admin refused a cross-site replay");
  return errorPage(context, 403, `Refused ${reason}: replay from the admin page itself.`);
}

/** The urlencoded body, or `null` when it is over {@link MAX_FORM_BYTES} (the rest is not read). */
async function readForm(request: Request): Promise<URLSearchParams | null> {
  if (Number(request.headers.get("content-length") ?? 0) > MAX_FORM_BYTES) return null;
  if (!request.body) return new URLSearchParams();
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = request.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_FORM_BYTES) {
      await reader.cancel();
      return null;
    }
    chunks.push(value);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString("utf8"));
}
