// One HTTP attempt of a webhook delivery: POST the signed body, with a
// deadline over the whole exchange (DNS, connect, TLS, until the status line),
// through the guarded DNS lookup (urlGuard.ts), never following a redirect.
// Connections are kept alive and reused; a new one is only ever made to an
// address the guarded lookup returned, resolved when it is made.
// The answer is a status code or a short sentence saying why there is none.
import http from "node:http";
import https from "node:https";
import { BlockedAddressError, guardedLookup, literalAddressRefusal, type LookupFunction } from "./urlGuard.js";

export type AttemptResult =
  | { kind: "response"; statusCode: number }
  | { kind: "failed"; error: string }
  /** Aborted by a shutdown before an answer came: the attempt counts as not made. */
  | { kind: "handedBack" };

export interface SendOptions {
  timeoutMs: number;
  allowPrivateNetworks: boolean;
  /** Resolves host names (dns.lookup unless a test gives another). */
  lookup?: LookupFunction;
  signal: AbortSignal;
}

const USER_AGENT = "todo-graphql-server-webhooks/1";
const MAX_SOCKETS_PER_HOST = 16;
const IDLE_SOCKET_MS = 4000;

// One keep-alive agent per scheme and lookup (the guarded one, the test's, or
// dns.lookup): a receiver that gets many deliveries keeps its connections.
const agents = new Map<string, Map<LookupFunction | undefined, http.Agent>>();
function agentFor(protocol: string, lookup: LookupFunction | undefined): http.Agent {
  let byLookup = agents.get(protocol);
  if (!byLookup) agents.set(protocol, (byLookup = new Map()));
  let agent = byLookup.get(lookup);
  if (!agent) {
    // An idle socket is dropped before the receiver's own keep-alive timeout
    // (Node's servers: 5 s) would close it under a request.
    const options = { keepAlive: true, maxSockets: MAX_SOCKETS_PER_HOST, timeout: IDLE_SOCKET_MS, ...(lookup ? { lookup } : {}) };
    agent = protocol === "https:" ? new https.Agent(options) : new http.Agent(options);
    byLookup.set(lookup, agent);
  }
  return agent;
}

export async function postWebhook(
  target: string,
  headers: Record<string, string>,
  body: string,
  options: SendOptions,
): Promise<AttemptResult> {
  const first = await postOnce(target, headers, body, options);
  // A kept-alive socket the receiver closed just as it was reused: the
  // request never reached it, so it is sent once more on a new connection.
  if (first.kind !== "staleSocket") return first;
  const second = await postOnce(target, headers, body, options, true);
  return second.kind === "staleSocket" ? { kind: "failed", error: "Connection reset by the receiver." } : second;
}

type OnceResult = AttemptResult | { kind: "staleSocket" };

function postOnce(
  target: string,
  headers: Record<string, string>,
  body: string,
  options: SendOptions,
  freshConnection = false,
): Promise<OnceResult> {
  const url = new URL(target);
  if (!options.allowPrivateNetworks) {
    const refusal = literalAddressRefusal(url);
    if (refusal) return Promise.resolve({ kind: "failed", error: refusal.message });
  }
  if (options.signal.aborted) return Promise.resolve({ kind: "handedBack" });
  const lookup = options.allowPrivateNetworks ? options.lookup : guardedLookupFor(options.lookup);
  const request = url.protocol === "https:" ? https.request : http.request;

  return new Promise<OnceResult>((resolve) => {
    let settled = false;
    const finish = (result: OnceResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal.removeEventListener("abort", onAbort);
      resolve(result);
    };
    const req = request(url, {
      method: "POST",
      // Kept-alive connections are reused: each was made to an address the lookup checked.
      agent: freshConnection ? false : agentFor(url.protocol, lookup),
      ...(freshConnection && lookup ? { lookup } : {}),
      headers: {
        ...headers,
        "content-type": "application/json",
        "content-length": String(Buffer.byteLength(body)),
        "user-agent": USER_AGENT,
      },
    });
    const timer = setTimeout(() => {
      finish({ kind: "failed", error: `Timed out after ${options.timeoutMs} ms.` });
      req.destroy();
    }, options.timeoutMs);
    const onAbort = () => {
      finish({ kind: "handedBack" });
      req.destroy();
    };
    options.signal.addEventListener("abort", onAbort, { once: true });
    req.on("response", (res) => {
      // The body is not needed: read and drop it, so the socket closes cleanly.
      res.resume();
      finish({ kind: "response", statusCode: res.statusCode ?? 0 });
    });
    req.on("error", (error: NodeJS.ErrnoException) =>
      finish(req.reusedSocket && error.code === "ECONNRESET" ? { kind: "staleSocket" } : { kind: "failed", error: describeError(error) }),
    );
    req.end(body);
  });
}

// The guarded lookup per underlying one, made once: the agent is keyed by it.
const guarded = new Map<LookupFunction | undefined, LookupFunction>();
function guardedLookupFor(resolve: LookupFunction | undefined): LookupFunction {
  let lookup = guarded.get(resolve);
  if (!lookup) guarded.set(resolve, (lookup = guardedLookup(resolve)));
  return lookup;
}

function describeError(error: NodeJS.ErrnoException): string {
  if (error instanceof BlockedAddressError) return error.message;
  switch (error.code) {
    case "ECONNREFUSED":
      return "Connection refused.";
    case "ECONNRESET":
      return "Connection reset by the receiver.";
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return "The host name could not be resolved.";
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return "The host is unreachable.";
    default:
      return error.code?.startsWith("ERR_TLS") || error.code?.includes("CERT")
        ? "The TLS handshake failed."
        : "The request failed before an answer came.";
  }
}

/** What a non-2xx status means for lastError. */
export function describeStatus(statusCode: number): string {
  if (statusCode >= 300 && statusCode < 400) return `HTTP ${statusCode}: redirects are not followed.`;
  return `HTTP ${statusCode}.`;
}
