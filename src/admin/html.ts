// HTML that escapes by default: every value interpolated into `html` is escaped (escape-html: & < > " '),
// so a value from the database can never become markup, in text or in a quoted attribute. Only another
// `html` fragment, or text wrapped in `raw` by a caller that vouches for it, goes in as it is.
import escapeHtml from "escape-html";

/** A fragment of HTML that is safe to insert as it is. */
export class SafeHtml {
  constructor(readonly value: string) {}

  toString(): string {
    return this.value;
  }
}

/** What `html` takes: fragments as they are, lists joined, `null`/`undefined`/`false` as nothing, the rest escaped. */
export type Interpolation =
  | SafeHtml
  | string
  | number
  | boolean
  | null
  | undefined
  | readonly Interpolation[];

/**
 * The tagged template of every admin view: escapes each interpolation unless it is {@link SafeHtml}.
 *
 * @example html`<td title="${event.userId}">${event.type}</td>`
 */
export function html(strings: TemplateStringsArray, ...values: Interpolation[]): SafeHtml {
  let out = strings[0] ?? "";
  values.forEach((value, i) => {
    out += render(value) + (strings[i + 1] ?? "");
  });
  return new SafeHtml(out);
}

/** Text the caller vouches for as markup (the library's own script tag); never data from the database. */
export function raw(markup: string): SafeHtml {
  return new SafeHtml(markup);
}

function render(value: Interpolation): string {
  if (value instanceof SafeHtml) return value.value;
  if (value === null || value === undefined || value === false) return "";
  if (Array.isArray(value)) return value.map(render).join("");
  return escapeHtml(String(value));
}
