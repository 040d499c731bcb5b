// Each listening process records itself in the processes table on its heartbeat, so the admin page and
// `status` can show who is listening with how many connections. One upsert per heartbeat per process,
// never per connection; a record lives for two heartbeats, so a killed process disappears within two.
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import type { History, ProcessRecord } from "./history.js";
import type { Logger } from "./types.js";

/** What a heartbeat reports about the process now. */
export type ProcessSample = Pick<ProcessRecord, "connections" | "anonymous" | "users" | "listener">;

export class ProcessRecorder {
  /** This process's id: `host:pid:tag`, unique even when pids are reused across containers. */
  private readonly host = hostname();
  readonly id = `${this.host}:${process.pid}:${randomBytes(3).toString("hex")}`;
  private readonly startedAt = new Date();
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> | null = null;

  constructor(
    private readonly history: History,
    private readonly heartbeatMs: number,
    private readonly sample: () => ProcessSample,
    private readonly logger: Logger,
  ) {}

  /** Starts recording (idempotent): once now, then every heartbeat. */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.record(), this.heartbeatMs).unref();
    this.record();
  }

  /** Stops recording and removes this process's record. */
  async stop(): Promise<void> {
    if (!this.timer) return;
    clearInterval(this.timer);
    this.timer = undefined;
    await this.writing;
    await this.history.forgetProcess(this.id).catch((error: unknown) => this.failed(error));
  }

  private record(): void {
    if (this.writing) return;
    const record: ProcessRecord = {
      id: this.id,
      host: this.host,
      pid: process.pid,
      startedAt: this.startedAt,
      ttlMs: 2 * this.heartbeatMs,
      ...this.sample(),
    };
    this.writing = this.history
      .heartbeat(record)
      .catch((error: unknown) => this.failed(error))
      .finally(() => {
        this.writing = null;
      });
  }

  private failed(error: unknown): void {
    // The listener reports database outages; this record is only for operators.
    this.logger.debug({ err: error }, "pgrealtime: recording this process failed");
  }
}
