// The client's address, for per-address limits (rate limits, WebSocket caps).
// Behind TRUST_PROXY the server sits behind exactly one proxy, whose own
// entry is the last one of X-Forwarded-For (the hop it saw); anything before
// it the client wrote itself. Without it, the TCP peer, and the header is
// ignored. This is what Express's req.ip gives with `trust proxy` set to 1,
// for requests Express never sees (a WebSocket upgrade).
import type { IncomingMessage } from "node:http";

export function clientAddress(request: IncomingMessage, trustProxy: boolean): string {
  const peer = request.socket.remoteAddress ?? "unknown";
  if (!trustProxy) return peer;
  const header = request.headers["x-forwarded-for"];
  const forwarded = (Array.isArray(header) ? header.join(",") : (header ?? "")).split(",");
  return forwarded[forwarded.length - 1]?.trim() || peer;
}
