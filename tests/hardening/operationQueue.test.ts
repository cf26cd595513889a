// The overload queue (src/http/operationQueue.ts) in front of a real HTTP
// server: handlers that are held open until the test releases them stand for
// operations still executing, so which request runs when is decided by the
// test, not by timing. Requests beyond the concurrency wait in arrival order;
// beyond the queue they are refused with 503 and nothing of them runs; a
// client that leaves while waiting never runs and frees its place.
import http from "node:http";
import type { AddressInfo } from "node:net";
import express from "express";
import { afterEach, describe, expect, it } from "vitest";
import { createOperationQueue, type OperationQueue } from "../../src/http/operationQueue.js";

interface Harness {
  url: string;
  queue: OperationQueue;
  /** The request numbers whose handler has started, in order. */
  started: number[];
  /** Lets the handler of request n answer. */
  release(n: number): void;
  close(): Promise<void>;
}

const harnesses: Harness[] = [];
afterEach(async () => {
  for (const harness of harnesses.splice(0)) await harness.close();
});

async function startHarness(maxConcurrent: number, maxQueued: number): Promise<Harness> {
  const queue = createOperationQueue({ maxConcurrent, maxQueued });
  const started: number[] = [];
  const releases = new Map<number, () => void>();
  const app = express();
  app.use("/graphql", queue.middleware, (req, res) => {
    const n = Number(req.query.n);
    started.push(n);
    releases.set(n, () => res.json({ data: { n } }));
  });
  const server = http.createServer(app);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const harness: Harness = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`,
    queue,
    started,
    release: (n) => releases.get(n)!(),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  harnesses.push(harness);
  return harness;
}

const send = (harness: Harness, n: number, signal?: AbortSignal) => fetch(`${harness.url}?n=${n}`, { signal });

/** Waits (bounded) until the condition holds: the server sees requests shortly after they are sent. */
async function until(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not reached within 5 s");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe("operation queue", () => {
  it("runs at most maxConcurrent at once, the rest in arrival order as slots free, and refuses beyond the queue with 503", async () => {
    const harness = await startHarness(2, 2);
    const first = send(harness, 1);
    const second = send(harness, 2);
    await until(() => harness.started.length === 2);
    const third = send(harness, 3);
    await until(() => harness.queue.state().queued === 1);
    const fourth = send(harness, 4);
    await until(() => harness.queue.state().queued === 2);

    const refused = await send(harness, 5);
    expect(refused.status).toBe(503);
    expect(refused.headers.get("retry-after")).toBe("1");
    expect(await refused.json()).toEqual({
      errors: [{ message: "The server is at capacity; try again shortly.", extensions: { code: "SERVICE_UNAVAILABLE" } }],
    });
    expect(harness.started).toEqual([1, 2]);
    expect(harness.queue.state()).toEqual({ executing: 2, queued: 2 });

    harness.release(2);
    expect(await (await second).json()).toEqual({ data: { n: 2 } });
    await until(() => harness.started.length === 3);
    expect(harness.started).toEqual([1, 2, 3]);
    harness.release(1);
    await until(() => harness.started.length === 4);
    expect(harness.started).toEqual([1, 2, 3, 4]);
    harness.release(3);
    harness.release(4);
    for (const response of await Promise.all([first, third, fourth])) expect(response.status).toBe(200);
    await until(() => harness.queue.state().executing === 0);
    expect(harness.queue.state()).toEqual({ executing: 0, queued: 0 });
    // Request 5 never ran.
    expect(harness.started).not.toContain(5);
  });

  it("forgets a waiting request whose client went away: it never runs, and the next one takes the slot", async () => {
    const harness = await startHarness(1, 5);
    const first = send(harness, 1);
    await until(() => harness.started.length === 1);
    const leaving = new AbortController();
    const abandoned = send(harness, 2, leaving.signal).catch((error: unknown) => error);
    await until(() => harness.queue.state().queued === 1);
    const third = send(harness, 3);
    await until(() => harness.queue.state().queued === 2);
    leaving.abort();
    expect(await abandoned).toBeInstanceOf(Error);
    await until(() => harness.queue.state().queued === 1);

    harness.release(1);
    await until(() => harness.started.length === 2);
    expect(harness.started).toEqual([1, 3]);
    harness.release(3);
    expect((await first).status).toBe(200);
    expect((await third).status).toBe(200);
    await until(() => harness.queue.state().executing === 0);
    expect(harness.started).toEqual([1, 3]);
  });

  it("with no queue, refuses whatever finds every slot taken, and serves again once one frees", async () => {
    const harness = await startHarness(1, 0);
    const first = send(harness, 1);
    await until(() => harness.started.length === 1);
    expect((await send(harness, 2)).status).toBe(503);
    harness.release(1);
    expect((await first).status).toBe(200);
    await until(() => harness.queue.state().executing === 0);
    const again = send(harness, 3);
    await until(() => harness.started.length === 2);
    harness.release(3);
    expect((await again).status).toBe(200);
    expect(harness.started).toEqual([1, 3]);
  });

  it("settled() resolves at once when idle, when the last executing request finishes, and otherwise after its bound", async () => {
    const harness = await startHarness(2, 2);
    const order: string[] = [];
    await harness.queue.settled(60_000).then(() => order.push("idle"));

    const first = send(harness, 1);
    const second = send(harness, 2);
    await until(() => harness.started.length === 2);
    // A bounded wait ends by its bound while requests still execute.
    const boundedAt = performance.now();
    await harness.queue.settled(20);
    expect(performance.now() - boundedAt).toBeGreaterThanOrEqual(15);
    expect(harness.queue.state().executing).toBe(2);

    // A long wait ends when the last one finishes, not when the first does.
    const waiting = harness.queue.settled(60_000).then(() => order.push(`settled with ${harness.queue.state().executing} executing`));
    harness.release(1);
    expect((await first).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(order).toEqual(["idle"]);
    harness.release(2);
    expect((await second).status).toBe(200);
    await waiting;
    expect(order).toEqual(["idle", "settled with 0 executing"]);
  });
});
