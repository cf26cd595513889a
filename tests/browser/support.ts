// A real Chromium (the Debian package at /usr/bin/chromium) driven by
// playwright-core, for the tests that need a browser: CORS and the Origin of
// a WebSocket are only what they are when a browser enforces them.
//
// Without Chromium these tests are skipped on a developer's machine, with a
// note; under CI=true they fail instead, so CI can never pass without them.
import { existsSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { chromium, type Browser } from "playwright-core";
import { describe } from "vitest";

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

const chromiumPresent = existsSync(CHROMIUM_PATH);
if (!chromiumPresent && process.env.CI !== "true") {
  console.warn(`browser tests skipped: no Chromium at ${CHROMIUM_PATH} (apt-get install chromium, or set CHROMIUM_PATH)`);
}

/** describe, or describe.skip outside CI when there is no Chromium (in CI the launch fails the suite). */
export const describeInBrowser = chromiumPresent || process.env.CI === "true" ? describe : describe.skip;

export async function launchChromium(): Promise<Browser> {
  if (!chromiumPresent) throw new Error(`No Chromium at ${CHROMIUM_PATH}: the browser tests need it (.ci/run installs it).`);
  // A fresh profile every launch (playwright's own temporary user data dir).
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/** True for a URL on this machine (127.0.0.1, localhost, ::1), and for data:/blob:/about: URLs, which are no request. */
export function isLocalUrl(url: string): boolean {
  const parsed = new URL(url);
  if (["data:", "blob:", "about:"].includes(parsed.protocol)) return true;
  return ["127.0.0.1", "localhost", "[::1]"].includes(parsed.hostname);
}

export interface StaticSite {
  /** The site's origin, e.g. http://127.0.0.1:43121 */
  origin: string;
  close(): Promise<void>;
}

/** A second web server, on its own port (so another origin), serving the given files by path. */
export async function serveSite(files: Record<string, { type: string; body: string | Buffer }>): Promise<StaticSite> {
  const server = http.createServer((req, res) => {
    const file = files[new URL(req.url ?? "/", "http://site").pathname];
    if (!file) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": file.type, "cache-control": "no-store" }).end(file.body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
