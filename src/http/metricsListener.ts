// /metrics on a listener of its own (METRICS_PORT), away from the public
// port: a private interface or port that only the scraper can reach. It
// serves /metrics (with METRICS_TOKEN still required when set) and a 404 for
// everything else.
import http from "node:http";
import type { AddressInfo } from "node:net";
import express from "express";
import { METRICS_PATH, metricsRoute, type Metrics } from "./metrics.js";
import { notFoundHandler } from "./requestErrors.js";

/** A scrape in flight when the server stops gets this long to finish. */
const CLOSE_GRACE_MS = 1000;

export interface MetricsListener {
  url: string;
  close(): Promise<void>;
}

export async function listenForMetrics(
  metrics: Metrics,
  options: { host: string; port: number; token: string | undefined },
): Promise<MetricsListener> {
  const app = express();
  app.disable("x-powered-by");
  app.use(metricsRoute(metrics, options.token));
  app.use(notFoundHandler(METRICS_PATH, "metrics"));
  const server = http.createServer(app);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const host = options.host === "0.0.0.0" || options.host === "::" ? "localhost" : options.host;
  return {
    url: `http://${host.includes(":") ? `[${host}]` : host}:${port}${METRICS_PATH}`,
    close: () =>
      new Promise<void>((resolve) => {
        // Idle keep-alive connections are closed at once by close(); a
        // connection still sending its request is cut after the grace.
        const cut = setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS);
        cut.unref();
        server.close(() => {
          clearTimeout(cut);
          resolve();
        });
      }),
  };
}
