// Monaco (GraphiQL's editor) runs its language services in web workers. They
// are bundled next to this script (explorer/build.ts) and loaded from the
// server itself: nothing comes from a CDN, and the Content-Security-Policy
// can allow workers from 'self' only. Imported before GraphiQL, which reads
// MonacoEnvironment when it creates its first editor.
const WORKERS: Record<string, string> = { json: "json.worker.js", graphql: "graphql.worker.js" };
const base = new URL(".", import.meta.url);

(globalThis as { MonacoEnvironment?: unknown }).MonacoEnvironment = {
  getWorker(_workerId: string, label: string): Worker {
    return new Worker(new URL(WORKERS[label] ?? "editor.worker.js", base));
  },
};
