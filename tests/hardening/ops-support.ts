// Small helpers for the operational tests (rate limits, metrics, logging,
// outage, shutdown): free ports, a GraphQL POST with arbitrary headers, and a
// log sink that captures pino's JSON lines. A private redis-server is in
// ../helpers/redis.ts.
import { Writable } from "node:stream";
import type { Logger } from "pino";
import { createLogger } from "../../src/logger.js";
import type { GraphQLResult } from "../helpers/server.js";
import { freePort } from "../helpers/process.js";

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export { freePort };

/** POST /graphql with extra headers (x-forwarded-for, authorization, x-request-id...). */
export async function post<Data = Record<string, unknown>>(
  url: string,
  query: string,
  variables?: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<GraphQLResult<Data>> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/graphql-response+json, application/json", ...headers },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as Omit<GraphQLResult<Data>, "status" | "headers">;
  return { status: response.status, headers: response.headers, ...body };
}

export interface LogSink {
  logger: Logger;
  /** Every line written so far, raw. */
  text(): string;
  /** Every line written so far, parsed. */
  lines(): Record<string, unknown>[];
}

/**
 * A logger made by the product's own createLogger (same redaction, same
 * format), writing into memory instead of stdout.
 */
export function captureLogs(level: Parameters<typeof createLogger>[0]["logLevel"]): LogSink {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      chunks.push(chunk.toString());
      callback();
    },
  });
  const logger = createLogger({ logLevel: level }, stream);
  return {
    logger,
    text: () => chunks.join(""),
    lines: () =>
      chunks
        .join("")
        .split("\n")
        .filter((line) => line.trim())
        .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

