// Debian's Chromium for the browser tests, driven through playwright-core (its own browser download does
// not work here). CHROMIUM_PATH overrides /usr/bin/chromium.
import { existsSync } from "node:fs";
import { type Browser, chromium } from "playwright-core";

const CHROMIUM_PATH = process.env.CHROMIUM_PATH || "/usr/bin/chromium";

/** Whether the browser tests can run; they are skipped (with {@link CHROMIUM_SKIP_REASON}) when not. */
export const HAS_CHROMIUM = existsSync(CHROMIUM_PATH);

export const CHROMIUM_SKIP_REASON = `no Chromium at ${CHROMIUM_PATH} (install Debian's chromium or set CHROMIUM_PATH)`;

if (!HAS_CHROMIUM) console.warn(`browser tests skipped: ${CHROMIUM_SKIP_REASON}`);

const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Starts headless Chromium with the flags this machine needs. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
}
