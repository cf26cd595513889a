import { parse } from "graphql";
import { describe, expect, it } from "vitest";
import { DocumentCache } from "../../src/http/documentCache.js";

const doc = (n: number) => parse(`{ me { id } } # ${n}`);

describe("DocumentCache", () => {
  it("keeps at most its capacity, evicting the least recently used", async () => {
    const cache = new DocumentCache(3);
    for (const n of [1, 2, 3]) await cache.set(`k${n}`, doc(n));
    expect(await cache.get("k1")).toBeDefined(); // k1 is now the most recent
    await cache.set("k4", doc(4)); // evicts k2, the least recently used
    expect(cache.size).toBe(3);
    expect(await cache.get("k2")).toBeUndefined();
    for (const key of ["k1", "k3", "k4"]) expect(await cache.get(key)).toBeDefined();
  });

  it("replaces an entry set again without growing, and deletes", async () => {
    const cache = new DocumentCache(2);
    await cache.set("a", doc(1));
    const replacement = doc(2);
    await cache.set("a", replacement);
    expect(cache.size).toBe(1);
    expect(await cache.get("a")).toBe(replacement);
    expect(await cache.delete("a")).toBe(true);
    expect(await cache.delete("a")).toBe(false);
    expect(cache.size).toBe(0);
  });

  it("stays bounded under a flood of unique documents", async () => {
    const cache = new DocumentCache(100);
    for (let n = 0; n < 5000; n++) await cache.set(`k${n}`, doc(n));
    expect(cache.size).toBe(100);
    expect(await cache.get("k4999")).toBeDefined();
    expect(await cache.get("k4899")).toBeUndefined();
  });
});
