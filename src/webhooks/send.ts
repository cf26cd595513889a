// One HTTP attempt of a webhook delivery: POST the signed body, with a
// deadline over the whole exchange (DNS, connect, TLS, until the status line),
// through the guarded DNS lookup (urlGuard.ts), never following a redirect.
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

export function postWebhook(target: string, headers: Record<string, string>, body: string, options: SendOptions): Promise<AttemptResult> {
  const url = new URL(target);
  if (!options.allowPrivateNetworks) {
    const refusal = literalAddressRefusal(url);
    if (refusal) return Promise.resolve({ kind: "failed", error: refusal.message });
  }
  if (options.signal.aborted) return Promise.resolve({ kind: "handedBack" });
  const lookup = options.allowPrivateNetworks ? options.lookup : guardedLookup(options.lookup);
  const request = url.protocol === "https:" ? https.request : http.request;

  return new Promise<AttemptResult>((resolve) => {
    let settled = false;
    const finish = (result: AttemptResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal.removeEventListener("abort", onAbort);
      resolve(result);
    };
    const req = request(url, {
      method: "POST",
      // One connection per attempt: no pooled socket to a host whose address may have changed.
      agent: false,
      ...(lookup ? { lookup } : {}),
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
    req.on("error", (error: NodeJS.ErrnoException) => finish({ kind: "failed", error: describeError(error) }));
    req.end(body);
  });
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
