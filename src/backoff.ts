const BACKOFF_BASE_MS = 100;
const BACKOFF_CAP_MS = 5_000;
/** While retries stay at the ceiling, a failure is logged at most this often. */
const QUIET_MS = 30_000;

/**
 * The ceiling (ms) of retry number `attempt` (0-based): 100 ms, doubling, capped at 5 s.
 */
export function backoffCeiling(attempt: number): number {
  return Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt);
}

/**
 * The wait (ms) before retry number `attempt` (0-based): full jitter below {@link backoffCeiling}.
 * Callers reset `attempt` after a success.
 */
export function backoffDelay(attempt: number): number {
  return Math.floor(Math.random() * backoffCeiling(attempt));
}

/**
 * Decides which failed retries deserve a log line, so that a long outage does not flood the log: each
 * retry whose backoff ceiling grew (the first seven), then at most one per `quietMs` while it stays down.
 */
export class RetryLog {
  private lastAt = Number.NEGATIVE_INFINITY;

  /**
   * @param quietMs Least time (ms) between two lines once the ceiling stopped growing. Default 30 000.
   * @param now The clock, in ms.
   */
  constructor(
    private readonly quietMs = QUIET_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** Whether to log the failure before retry number `attempt` (0-based); if so, it counts as logged. */
  shouldLog(attempt: number): boolean {
    const grew = attempt === 0 || backoffCeiling(attempt) > backoffCeiling(attempt - 1);
    const at = this.now();
    if (!grew && at - this.lastAt < this.quietMs) return false;
    this.lastAt = at;
    return true;
  }
}

/**
 * A network failure in few words, e.g. "ECONNREFUSED 127.0.0.1:5432" (Node's error messages say "connect"
 * first, and an AggregateError has none), or else the error's message.
 */
export function failureDetail(error: unknown): string {
  const { code, address, port, message, errors } = (error ?? {}) as NodeJS.ErrnoException & {
    address?: string;
    port?: number;
    errors?: unknown[];
  };
  // Node tries each address of a host name in turn and reports all of their failures together.
  if (Array.isArray(errors) && errors.length > 0) return errors.map(failureDetail).join(", ");
  if (code && address) return `${code} ${address}${port === undefined ? "" : `:${port}`}`;
  return message || String(error);
}
