import type { Logger } from "../../src/index.js";

/** A logger that keeps warnings and errors (their arguments), so a test can check what was reported. */
export function recordingLogger(): Logger & { warnings: unknown[][]; errors: unknown[][] } {
  const warnings: unknown[][] = [];
  const errors: unknown[][] = [];
  return {
    warnings,
    errors,
    debug() {},
    info() {},
    warn: (...args: unknown[]) => warnings.push(args),
    error: (...args: unknown[]) => errors.push(args),
  };
}

/**
 * Whether a warning or an error was logged about the event `eventId`: as `{ eventId }` (the library's
 * convention) or named in the message text.
 */
export function loggedAbout(
  logger: { warnings: unknown[][]; errors: unknown[][] },
  eventId: string,
): boolean {
  const named = new RegExp(`\\b${eventId.replace(/[^0-9A-Za-z-]/g, "")}\\b`);
  return [...logger.warnings, ...logger.errors].some((args) =>
    args.some((arg) =>
      typeof arg === "string"
        ? named.test(arg)
        : String((arg as { eventId?: unknown } | null)?.eventId) === eventId,
    ),
  );
}
