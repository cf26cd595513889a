// Which webhook URLs are accepted, and which addresses a delivery may connect
// to (docs/api/WEBHOOKS.md, "Accepted URLs"). Two checks, because a name's
// addresses can change between creation and any later attempt:
//   - at createWebhook / updateWebhook (checkWebhookUrl): the URL's shape, and
//     a host that is a private address written out (or `localhost`);
//   - at every attempt (guardedLookup, used as the connection's DNS lookup):
//     every address the name resolves to, so the address actually connected
//     to is one that was checked. An IP literal needs no lookup (Node skips
//     it), so send.ts checks literals itself (literalAddressRefusal).
// WEBHOOK_ALLOW_PRIVATE_NETWORKS=true lifts the address checks (development
// and tests), never the shape checks.
import dns from "node:dns";
import net from "node:net";
import { badUserInput } from "../errors.js";

export const MAX_URL_LENGTH = 2000;

export interface UrlPolicy {
  allowPrivateNetworks: boolean;
  /** http:// is accepted only outside production. */
  isProduction: boolean;
}

/** The URL as it will be stored, or BAD_USER_INPUT on `url` saying what is wrong with it. */
export function checkWebhookUrl(raw: string, policy: UrlPolicy): string {
  const refuse = (message: string) => badUserInput(message, "url");
  const value = raw.trim();
  if (value.length > MAX_URL_LENGTH) throw refuse(`The URL must be at most ${MAX_URL_LENGTH} characters.`);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw refuse("Enter a valid URL, such as https://example.com/webhooks.");
  }
  const schemes = policy.isProduction ? ["https:"] : ["https:", "http:"];
  if (!schemes.includes(url.protocol)) {
    throw refuse(policy.isProduction ? "The URL must start with https://." : "The URL must start with https:// or http://.");
  }
  if (url.username || url.password) throw refuse("The URL must not contain a user name or password.");
  if (!policy.allowPrivateNetworks) {
    const host = hostOf(url);
    if (host === "localhost" || host.endsWith(".localhost") || (net.isIP(host) && isPrivateAddress(host))) {
      throw refuse("The URL must not point to a loopback, private, link-local or metadata address.");
    }
  }
  return url.toString();
}

/** The hostname without IPv6 brackets or a trailing dot, lower-cased. */
export function hostOf(url: URL): string {
  return url.hostname.replace(/^\[(.*)\]$/, "$1").replace(/\.$/, "").toLowerCase();
}

// IPv4 ranges no webhook may reach: "this network", loopback, private,
// carrier-grade NAT, link-local (cloud metadata at 169.254.169.254),
// IETF protocol assignments, benchmarking, multicast and reserved.
const BLOCKED_V4: [string, number][] = [
  ["0.0.0.0", 8],
  ["10.0.0.0", 8],
  ["100.64.0.0", 10],
  ["127.0.0.0", 8],
  ["169.254.0.0", 16],
  ["172.16.0.0", 12],
  ["192.0.0.0", 24],
  ["192.168.0.0", 16],
  ["198.18.0.0", 15],
  ["224.0.0.0", 4],
  ["240.0.0.0", 4],
];

const ipv4Number = (address: string) => address.split(".").reduce((n, part) => n * 256 + Number(part), 0);

function blockedV4(address: string): boolean {
  const value = ipv4Number(address);
  return BLOCKED_V4.some(([base, bits]) => {
    const size = 2 ** (32 - bits);
    const start = ipv4Number(base);
    return value >= start && value < start + size;
  });
}

/** Whether a webhook delivery must never connect to this IP address. */
export function isPrivateAddress(address: string): boolean {
  const kind = net.isIP(address);
  if (kind === 4) return blockedV4(address);
  if (kind !== 6) return true;
  const lower = address.toLowerCase();
  // IPv4-mapped (::ffff:a.b.c.d, or its hex form) is the IPv4 address.
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower)?.[1];
  if (mapped) return blockedV4(mapped);
  const hexMapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(lower);
  if (hexMapped) {
    const high = parseInt(hexMapped[1]!, 16);
    const low = parseInt(hexMapped[2]!, 16);
    return blockedV4(`${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`);
  }
  if (lower === "::" || lower === "::1") return true;
  const first = parseInt(lower.split(":")[0] || "0", 16);
  // fc00::/7 unique-local, fe80::/10 link-local, ff00::/8 multicast.
  return (first & 0xfe00) === 0xfc00 || (first & 0xffc0) === 0xfe80 || (first & 0xff00) === 0xff00;
}

export class BlockedAddressError extends Error {
  override name = "BlockedAddressError";
  constructor(readonly address: string) {
    super(`Refused to connect to ${address}: a loopback, private, link-local or metadata address.`);
  }
}

/** A DNS lookup with dns.lookup's callback shape (what http.Agent's `lookup` option takes). */
export type LookupFunction = (
  hostname: string,
  options: dns.LookupOptions,
  callback: (error: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => void,
) => void;

/**
 * `resolve` (dns.lookup by default), refusing the whole answer when any of its
 * addresses is private: a name that resolves to a public and a private
 * address must not let the connection pick the private one.
 */
export function guardedLookup(resolve: LookupFunction = dns.lookup as LookupFunction): LookupFunction {
  return (hostname, options, callback) => {
    resolve(hostname, { ...options, all: true }, (error, addresses) => {
      if (error) return callback(error, "", 0);
      const all = Array.isArray(addresses) ? addresses : [{ address: addresses, family: net.isIP(addresses) }];
      const blocked = all.find((entry) => isPrivateAddress(entry.address));
      if (blocked) return callback(new BlockedAddressError(blocked.address), "", 0);
      if (options.all) return callback(null, all);
      const first = all[0];
      if (!first) return callback(Object.assign(new Error(`No address for ${hostname}.`), { code: "ENOTFOUND" }), "", 0);
      return callback(null, first.address, first.family);
    });
  };
}

/** For a URL whose host is an IP literal: the refusal, when that address is private. */
export function literalAddressRefusal(url: URL): BlockedAddressError | undefined {
  const host = hostOf(url);
  return net.isIP(host) && isPrivateAddress(host) ? new BlockedAddressError(host) : undefined;
}
