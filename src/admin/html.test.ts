import { describe, expect, it } from "vitest";
import { html, raw } from "./html.js";

describe("html", () => {
  it("escapes every interpolation, in text and in attributes", () => {
    const value = `<img src=x onerror=alert(1)> "quoted" 'single' & more`;
    expect(html`<p title="${value}">${value}</p>`.value).toBe(
      '<p title="&lt;img src=x onerror=alert(1)&gt; &quot;quoted&quot; &#39;single&#39; &amp; more">' +
        "&lt;img src=x onerror=alert(1)&gt; &quot;quoted&quot; &#39;single&#39; &amp; more</p>",
    );
  });

  it("inserts nested fragments and raw() as they are, joins lists, drops null, undefined and false", () => {
    const items = ["<a>", "b"].map((item) => html`<li>${item}</li>`);
    expect(html`<ul>${items}</ul>${null}${undefined}${false}${0}${raw("<br>")}`.value).toBe(
      "<ul><li>&lt;a&gt;</li><li>b</li></ul>0<br>",
    );
  });

  it("a string that looks like a fragment is still escaped: only SafeHtml values pass", () => {
    const forged = { value: "<script>" } as unknown as string;
    expect(html`${forged}`.value).toBe("[object Object]");
    expect(html`${"<script>"}`.value).toBe("&lt;script&gt;");
  });
});
