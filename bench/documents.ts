// Heap taken by Apollo Server's parsed-document cache when a client sends many
// distinct documents: our count-bounded cache (src/http/documentCache.ts)
// against Apollo's default store (an LRU bounded by an estimate of JSON size,
// 30 MiB), filled the way Apollo fills it: one parsed, validated document per
// distinct query text. Prints the heap growth of each after a forced GC.
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
// Apollo's own default store, from the package Apollo Server depends on.
import { InMemoryLRUCache } from "@apollo/utils.keyvaluecache";
import { parse, type DocumentNode } from "graphql";
import { DOCUMENT_CACHE_ENTRIES, DocumentCache } from "../src/http/documentCache.js";
import { boundedInt } from "./support.js";

const DOCUMENTS = boundedInt(process.env.BENCH_DOCUMENTS, 12_000, 100, 200_000, "BENCH_DOCUMENTS");

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;
const heapMb = () => {
  gc();
  gc();
  return process.memoryUsage().heapUsed / 2 ** 20;
};

interface Store {
  set(key: string, document: DocumentNode): Promise<void>;
}

// Stores stay reachable here while the heap is measured.
const retained: Store[] = [];

async function growth(makeStore: () => Store): Promise<number> {
  const before = heapMb();
  const store = makeStore();
  retained.push(store);
  for (let n = 0; n < DOCUMENTS; n++) {
    const text = `query Q${n} { me { id name email } spaces(first: 5) { nodes { id name lists { totalCount } } } }`;
    await store.set(`doc:${n}`, parse(text));
  }
  return heapMb() - before;
}

const bounded = await growth(() => new DocumentCache());
retained.length = 0;
const apollo = await growth(() => new InMemoryLRUCache<DocumentNode>());
console.log(`${DOCUMENTS} distinct documents, heap growth after GC (Node ${process.version}):`);
console.log(`  bounded cache (${DOCUMENT_CACHE_ENTRIES} entries)   ${bounded.toFixed(1).padStart(7)} MB`);
console.log(`  Apollo default (30 MiB estimate) ${apollo.toFixed(1).padStart(7)} MB`);
console.log(`  Apollo default / bounded         ${(apollo / bounded).toFixed(1).padStart(7)}x`);
