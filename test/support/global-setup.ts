import { randomBytes } from "node:crypto";
import type { TestProject } from "vitest/node";
import { createDatabase, dropDatabase, startPostgres } from "../../scripts/postgres.mjs";

declare module "vitest" {
  export interface ProvidedContext {
    /** Connection string of this run's own database: created before the first test, dropped after the last. */
    databaseUrl: string;
  }
}

// One database per run, so that runs sharing a server (DATABASE_URL) never see each other's rows or
// notifications; inside it, each test isolates itself further with its own schema (see freshSchema).
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const postgres = await startPostgres();
  const name = `pgrealtime_test_${Date.now()}_${randomBytes(4).toString("hex")}`;
  try {
    project.provide("databaseUrl", await createDatabase(postgres.connectionString, name));
  } catch (error) {
    await postgres.stop();
    throw error;
  }
  return async () => {
    try {
      await dropDatabase(postgres.connectionString, name);
    } finally {
      await postgres.stop();
    }
  };
}
