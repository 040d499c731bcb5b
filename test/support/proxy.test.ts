import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import { databaseUrl } from "./database.js";
import { type FaultProxy, startProxy } from "./proxy.js";

describe("the fault proxy", () => {
  const opened: Array<{ end(): Promise<void> }> = [];
  let proxy: FaultProxy | undefined;

  afterEach(async () => {
    for (const thing of opened.splice(0)) await thing.end().catch(() => {});
    await proxy?.close();
  });

  async function client(): Promise<pg.Client> {
    const c = new pg.Client({ connectionString: proxy?.connectionString, connectionTimeoutMillis: 5_000 });
    c.on("error", () => {});
    opened.push(c);
    await c.connect();
    return c;
  }

  it("forwards to PostgreSQL on its own loopback port", async () => {
    proxy = await startProxy(databaseUrl());
    expect(new URL(proxy.connectionString).host).toBe(`127.0.0.1:${proxy.port}`);
    const c = await client();
    const { rows } = await c.query("SELECT 1 + 1 AS n");
    expect(rows).toEqual([{ n: 2 }]);
    expect(proxy.counters).toMatchObject({ accepted: 1, open: 1, cut: 0 });
  });

  it("cut() resets every open connection; new ones work", async () => {
    proxy = await startProxy(databaseUrl());
    const [a, b] = [await client(), await client()];
    const failures = [a, b].map((c) => new Promise((resolve) => c.once("error", resolve)));
    proxy.cut();
    await Promise.all(failures);
    await expect(a.query("SELECT 1")).rejects.toThrow();
    expect(proxy.counters.cut).toBe(2);
    await expect.poll(() => proxy?.counters.open).toBe(0);
    expect((await (await client()).query("SELECT 2 AS n")).rows).toEqual([{ n: 2 }]);
  });

  it("blackhole() holds a query (the socket stays open) until restore()", async () => {
    proxy = await startProxy(databaseUrl());
    const c = await client();
    proxy.blackhole();
    let answered = false;
    const query = c.query("SELECT 3 AS n").then((result) => {
      answered = true;
      return result.rows;
    });
    // Absence of an answer can only be shown over some time: a third of a second is plenty on loopback.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(answered).toBe(false);
    expect(proxy.counters.open).toBe(1);
    proxy.restore();
    expect(await query).toEqual([{ n: 3 }]);
  });

  it('blackhole("open") holds the open connections only: a new one gets through', async () => {
    proxy = await startProxy(databaseUrl());
    const old = await client();
    proxy.blackhole("open");
    let answered = false;
    const held = old.query("SELECT 6 AS n").then(() => {
      answered = true;
    });
    expect((await (await client()).query("SELECT 7 AS n")).rows).toEqual([{ n: 7 }]);
    expect(answered).toBe(false);
    proxy.restore();
    await held;
  });

  it("refuse(true) resets new connections at once; refuse(false) lets them in", async () => {
    proxy = await startProxy(databaseUrl());
    proxy.refuse(true);
    await expect(client()).rejects.toThrow();
    expect(proxy.counters.refused).toBe(1);
    proxy.refuse(false);
    expect((await (await client()).query("SELECT 4 AS n")).rows).toEqual([{ n: 4 }]);
  });

  it("killDuringStartup(n) cuts the next connection after n bytes from the server, mid-handshake", async () => {
    proxy = await startProxy(databaseUrl());
    proxy.killDuringStartup(20);
    await expect(client()).rejects.toThrow();
    expect(proxy.counters.cut).toBe(1);
    expect((await (await client()).query("SELECT 5 AS n")).rows).toEqual([{ n: 5 }]);
    expect(() => proxy?.killDuringStartup(0)).toThrow(RangeError);
  });

  it("refuses anything but a loopback postgres:// URL", async () => {
    await expect(startProxy("postgres://postgres@db.example.com:5432/postgres")).rejects.toThrow(
      /loopback host/,
    );
    await expect(startProxy("http://127.0.0.1:5432/")).rejects.toThrow(/postgres:\/\//);
  });
});
