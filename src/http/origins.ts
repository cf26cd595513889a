// Which browser origins may call the API (CORS_ORIGINS): the one list that
// decides both the CORS headers on HTTP and the Origin check at the WebSocket
// upgrade. An entry is an exact origin (`https://app.example.com`), an origin
// with a wildcard for its subdomains (`https://*.example.com`: any name below
// example.com, not example.com itself) or for its port
// (`http://localhost:*`: any port, or none), or `*` for any origin at all.

/** Outside production, with CORS_ORIGINS unset: a dev server on any local port. */
export const DEVELOPMENT_ORIGINS: readonly string[] = ["http://localhost:*", "http://127.0.0.1:*"];

const ENTRY = /^(https?):\/\/(\*\.)?([a-z0-9-]+(?:\.[a-z0-9-]+)*|\[[0-9a-f:.]+\])(?::(\*|\d{1,5}))?$/;

/**
 * The entries of a CORS_ORIGINS value, normalised (lower case, no default
 * port); throws an Error whose message says which entry is wrong and why.
 * `none` is the empty list.
 */
export function parseOriginList(value: string): string[] {
  const entries = value.split(",").map((entry) => entry.trim()).filter((entry) => entry !== "");
  if (entries.length === 1 && entries[0]?.toLowerCase() === "none") return [];
  if (entries.length === 0) throw new Error("must list at least one origin (or be none)");
  return entries.map(normaliseEntry);
}

function normaliseEntry(entry: string): string {
  if (entry === "*") return "*";
  const match = ENTRY.exec(entry.toLowerCase());
  if (!match) {
    throw new Error(
      `"${entry}" is not an origin: write scheme://host[:port] with http or https and no path or trailing slash, *. before the host for its subdomains, :* for any port, or * alone for any origin`,
    );
  }
  const [, scheme, subdomains = "", host, port] = match;
  if (port !== undefined && port !== "*" && (Number(port) < 1 || Number(port) > 65535)) {
    throw new Error(`"${entry}" has no valid port (1-65535)`);
  }
  const defaultPort = scheme === "https" ? "443" : "80";
  return `${scheme}://${subdomains}${host}${port === undefined || port === defaultPort ? "" : `:${port}`}`;
}

export interface OriginPolicy {
  /** True for an Origin header value the list admits. */
  allows(origin: string): boolean;
}

/** A matcher for a list parseOriginList returned. */
export function originPolicy(entries: readonly string[]): OriginPolicy {
  const exact = new Set<string>();
  const patterns: RegExp[] = [];
  let any = false;
  for (const entry of entries) {
    if (entry === "*") any = true;
    else if (!entry.includes("*")) exact.add(entry);
    else patterns.push(entryPattern(entry));
  }
  return {
    allows(origin) {
      if (any) return true;
      const normalised = normaliseOrigin(origin);
      if (normalised === undefined) return false;
      return exact.has(normalised) || patterns.some((pattern) => pattern.test(normalised));
    },
  };
}

function entryPattern(entry: string): RegExp {
  const [, scheme, subdomains, host, port] = /^(https?):\/\/(\*\.)?([^:]+|\[[^\]]+\])(?::(.+))?$/.exec(entry) ?? [];
  const escapedHost = (host ?? "").replace(/[.[\]]/g, "\\$&");
  const hostPattern = subdomains ? `(?:[a-z0-9-]+\\.)+${escapedHost}` : escapedHost;
  const portPattern = port === "*" ? "(?::\\d{1,5})?" : port ? `:${port}` : "";
  return new RegExp(`^${scheme}:\\/\\/${hostPattern}${portPattern}$`);
}

/**
 * An Origin header as scheme://host[:port], lower case and without its
 * scheme's default port; undefined for "null" (sandboxed frames, file: pages)
 * and anything else that is not an http(s) origin.
 */
function normaliseOrigin(origin: string): string | undefined {
  if (!/^https?:\/\/[^/?#@]+$/i.test(origin)) return undefined;
  try {
    const url = new URL(origin);
    return url.origin === "null" ? undefined : url.origin;
  } catch {
    return undefined;
  }
}
