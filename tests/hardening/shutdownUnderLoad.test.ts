// SIGTERM in the middle of load, against the real process (started as an
// operator starts it): every request the server had accepted before the
// signal completes with 200 and a valid GraphQL result; requests that arrive
// after the listener has closed are refused, and are counted apart; the
// process exits 0 within SHUTDOWN_TIMEOUT.
//
// Each request opens its own connection (Connection: close), so "accepted
// before the signal" has a precise meaning: its TCP connection was open
// before SIGTERM was sent.
import http from "node:http";
import { describe, expect, it } from "vitest";
import { serverProcesses } from "../helpers/process.js";
import { sleep } from "./ops-support.js";

const SHUTDOWN_TIMEOUT_MS = 10_000;
const { launch, serverEnv } = serverProcesses();

interface Outcome {
  /** The TCP connection was open before SIGTERM was sent. */
  acceptedBeforeSignal: boolean;
  /** When the connection opened, in ms since the epoch. */
  connectedAt?: number;
  status?: number;
  body?: string;
  error?: string;
}

/** One POST on a connection of its own; never rejects. */
function request(port: number, body: string, token: string, signalled: () => boolean): Promise<Outcome> {
  return new Promise((resolve) => {
    const outcome: Outcome = { acceptedBeforeSignal: false };
    const req = http.request(
      {
        host: "127.0.0.1",
        port,
        path: "/graphql",
        method: "POST",
        agent: false,
        headers: {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(body),
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          connection: "close",
        },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => (text += chunk));
        res.on("end", () => resolve({ ...outcome, status: res.statusCode, body: text }));
        res.on("error", (error) => resolve({ ...outcome, status: res.statusCode, error: error.message }));
      },
    );
    req.on("socket", (socket) => {
      socket.once("connect", () => {
        outcome.acceptedBeforeSignal = !signalled();
        outcome.connectedAt = Date.now();
      });
    });
    req.on("error", (error: NodeJS.ErrnoException) => resolve({ ...outcome, error: error.code ?? error.message }));
    req.end(body);
  });
}

describe("graceful shutdown under load", () => {
  it("finishes every request accepted before SIGTERM, refuses the rest, exits 0 in time", async () => {
    const env = await serverEnv();
    const { child, output, exit } = await launch({ ...env, SHUTDOWN_TIMEOUT: `${SHUTDOWN_TIMEOUT_MS}ms` });
    const port = Number(env.PORT);

    // A user with a list, so the load mixes reads and writes.
    const signUpBody = JSON.stringify({
      query: `mutation { signUp(input: { email: "load@example.com", password: "password-1" }) { token } }`,
    });
    const created = await request(port, signUpBody, "", () => false);
    const token = (JSON.parse(created.body!) as { data: { signUp: { token: string } } }).data.signUp.token;
    const spaceBody = JSON.stringify({ query: `mutation { createSpace(input: { name: "Load", slug: "load1" }) { id } }` });
    const spaceId = (JSON.parse((await request(port, spaceBody, token, () => false)).body!) as { data: { createSpace: { id: string } } })
      .data.createSpace.id;
    const listBody = JSON.stringify({ query: `mutation { createList(input: { spaceId: "${spaceId}", title: "Load" }) { id } }` });
    const listId = (JSON.parse((await request(port, listBody, token, () => false)).body!) as { data: { createList: { id: string } } })
      .data.createList.id;
    const bodies = [
      JSON.stringify({ query: `{ me { id email } }` }),
      JSON.stringify({ query: `{ list(id: "${listId}") { id title todos(first: 20) { edges { node { id title } } } } }` }),
      JSON.stringify({ query: `mutation { createTodo(input: { listId: "${listId}", title: "under load" }) { id title } }` }),
    ];

    let signalledAt = 0;
    const signalled = () => signalledAt > 0;
    const outcomes: Outcome[] = [];
    const WORKERS = 8;
    const workers = Array.from({ length: WORKERS }, async (_, worker) => {
      for (let i = 0; ; i++) {
        const outcome = await request(port, bodies[(worker + i) % bodies.length]!, token, signalled);
        outcomes.push(outcome);
        // After the signal, keep going until the server refuses us (bounded).
        if (signalled() && (outcome.error || Date.now() - signalledAt > SHUTDOWN_TIMEOUT_MS)) return;
      }
    });
    await sleep(1500);
    signalledAt = Date.now();
    child.kill("SIGTERM");
    await Promise.all(workers);
    const code = await exit;
    const exitedAfterMs = Date.now() - signalledAt;

    const before = outcomes.filter((o) => o.acceptedBeforeSignal);
    const after = outcomes.filter((o) => !o.acceptedBeforeSignal);
    const valid = (o: Outcome) => {
      if (o.status !== 200 || !o.body) return false;
      const result = JSON.parse(o.body) as { data?: Record<string, unknown> | null; errors?: unknown[] };
      return !result.errors && !!result.data && Object.values(result.data).every((v) => v !== null);
    };
    const failedBefore = before.filter((o) => !valid(o));
    const afterCompleted = after.filter(valid).length;
    const afterRefused = after.filter((o) => o.error).length;
    console.log(
      `shutdown under load: ${before.length} requests accepted before SIGTERM (${before.length - failedBefore.length} completed with 200), ` +
        `${after.length} after it (${afterCompleted} completed, ${afterRefused} refused: ` +
        `${JSON.stringify(countBy(after.filter((o) => o.error).map((o) => o.error!)))}); exit ${code} after ${exitedAfterMs} ms`,
    );

    expect(before.length).toBeGreaterThan(WORKERS);
    expect(
      failedBefore.map((o) => ({ ...o, connectedMsBeforeSignal: signalledAt - (o.connectedAt ?? 0) })),
      "requests accepted before SIGTERM that did not complete",
    ).toEqual([]);
    // Whatever came after the signal either completed properly or was refused; nothing half-done.
    for (const o of after) expect(valid(o) || !!o.error, JSON.stringify(o)).toBe(true);
    expect(code, output()).toBe(0);
    expect(exitedAfterMs).toBeLessThan(SHUTDOWN_TIMEOUT_MS + 2000);
    expect(output()).toContain("shutdown complete");
  }, 90_000);
});

function countBy(values: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const value of values) counts[value] = (counts[value] ?? 0) + 1;
  return counts;
}
