// The explorer (EXPLORER=graphiql): GraphiQL 5, bundled from npm packages by
// explorer/build.ts into dist/explorer, served by this server alone. A
// browser asking for HTML at GET /graphql gets its page; its scripts, styles
// and Monaco's workers are under /explorer/. Nothing it loads comes from
// anywhere else, which the page's Content-Security-Policy enforces.
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import express, { type Request, type Response, type Router } from "express";
import type { Logger } from "../logger.js";

export const EXPLORER_ASSETS_PATH = "/explorer";
export const EXPLORER_BUILD_DIR = fileURLToPath(new URL("../../dist/explorer/", import.meta.url));
/** The file whose presence says the build ran. */
const ENTRY_SCRIPT = "explorer.js";

// A Host header that is a plain host[:port] (anything else gets no ws: source).
const PLAIN_HOST = /^[a-z0-9.-]+(?::\d{1,5})?$|^\[[0-9a-f:.]+\](?::\d{1,5})?$/i;

/**
 * Only this server: scripts, workers, fonts and fetches from 'self', the
 * WebSocket on the host the page came from. Styles also allow inline ones:
 * Monaco writes its theme and layout into <style> elements it creates at run
 * time, and offers no nonce for them. No frame may embed the page.
 */
export function explorerContentSecurityPolicy(host: string | undefined): string {
  const webSocket = host && PLAIN_HOST.test(host) ? ` ws://${host} wss://${host}` : "";
  return [
    "default-src 'none'",
    "script-src 'self'",
    "worker-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "font-src 'self' data:",
    "img-src 'self' data:",
    `connect-src 'self'${webSocket}`,
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; ");
}

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Todo GraphQL explorer</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${EXPLORER_ASSETS_PATH}/explorer.css">
<script type="module" src="${EXPLORER_ASSETS_PATH}/${ENTRY_SCRIPT}"></script>
</head>
<body><div id="root"></div></body>
</html>
`;

const NOT_BUILT_PAGE = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Explorer not built</title></head>
<body>
<h1>The explorer is not built</h1>
<p>This server serves GraphiQL from <code>dist/explorer</code>, which <code>npm install</code> builds.
Run <code>npm run build:explorer</code> and reload, or set <code>EXPLORER=sandbox</code> or <code>EXPLORER=none</code>.</p>
</body>
</html>
`;

/** Whether a GET is a browser asking for a page rather than a GraphQL client asking for a result. */
function wantsHtml(req: Request): boolean {
  return req.accepts(["application/graphql-response+json", "application/json", "text/html"]) === "text/html";
}

function securityHeaders(req: Request, res: Response) {
  res.setHeader("content-security-policy", explorerContentSecurityPolicy(req.headers.host));
  res.setHeader("x-content-type-options", "nosniff");
  res.setHeader("referrer-policy", "no-referrer");
}

export function explorerRoutes(options: { graphqlPath: string; logger: Logger; buildDir?: string }): Router {
  const buildDir = options.buildDir ?? EXPLORER_BUILD_DIR;
  const built = existsSync(path.join(buildDir, ENTRY_SCRIPT));
  if (!built) {
    options.logger.warn({ buildDir }, "EXPLORER=graphiql but the explorer is not built: run npm run build:explorer");
  }
  const router = express.Router();
  // Not router.get: Express would then answer OPTIONS /graphql itself (Allow: GET, HEAD)
  // before the CORS preflight handling sees it.
  router.use((req, res, next) => {
    if (req.method !== "GET" || req.path !== options.graphqlPath || !wantsHtml(req)) return next();
    securityHeaders(req, res);
    res.setHeader("cache-control", "no-cache");
    res.vary("Accept");
    res.status(built ? 200 : 503).type("html").send(built ? PAGE : NOT_BUILT_PAGE);
  });
  router.use(
    EXPLORER_ASSETS_PATH,
    express.static(buildDir, {
      index: false,
      // Names without content hashes: the browser revalidates (ETag) instead of keeping a stale copy.
      cacheControl: true,
      maxAge: 0,
      setHeaders: (res) => {
        // Monaco's workers take the policy their own script is served with.
        res.setHeader("content-security-policy", explorerContentSecurityPolicy(res.req.headers.host));
        res.setHeader("x-content-type-options", "nosniff");
      },
    }),
  );
  return router;
}
