// The bound on delivery checks running at once (src/realtime/delivery.ts).
import { describe, expect, it } from "vitest";
import { createLimiter } from "../../src/realtime/delivery.js";

const deferred = () => {
  let resolve: () => void = () => undefined;
  let reject: (error: Error) => void = () => undefined;
  const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
};
const flush = () => new Promise((resolve) => setImmediate(resolve));

describe("createLimiter", () => {
  it("runs at most max tasks at once, the rest in arrival order, and frees a slot on failure too", async () => {
    const limiter = createLimiter(2);
    const gates = Array.from({ length: 5 }, deferred);
    const started: number[] = [];
    const results = gates.map((gate, index) =>
      limiter.run(async () => {
        started.push(index);
        await gate.promise;
        return index;
      }),
    );
    await flush();
    expect(started).toEqual([0, 1]);
    expect(limiter.waiting).toBe(3);

    gates[1]!.reject(new Error("check failed"));
    await expect(results[1]).rejects.toThrow("check failed");
    await flush();
    expect(started).toEqual([0, 1, 2]);

    gates[0]!.resolve();
    gates[2]!.resolve();
    await flush();
    expect(started).toEqual([0, 1, 2, 3, 4]);
    expect(limiter.waiting).toBe(0);
    gates[3]!.resolve();
    gates[4]!.resolve();
    expect(await Promise.all([results[0], results[2], results[3], results[4]])).toEqual([0, 2, 3, 4]);

    // All slots free again: max tasks start at once.
    const again = [deferred(), deferred()];
    const more: number[] = [];
    const runs = again.map((gate, index) =>
      limiter.run(async () => {
        more.push(index);
        await gate.promise;
      }),
    );
    await flush();
    expect(more).toEqual([0, 1]);
    again.forEach((gate) => gate.resolve());
    await Promise.all(runs);
  });
});
