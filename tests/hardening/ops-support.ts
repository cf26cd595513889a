// Small helpers for the operational tests (rate limits, metrics, logging,
// outage, shutdown, connection caps): free ports, a GraphQL POST with
// arbitrary headers, a log sink that captures pino's JSON lines, and a
// Prometheus scrape. A private redis-server is in ../helpers/redis.ts.
import { Writable } from "node:stream";
import type { Logger } from "pino";
import { expect } from "vitest";
import { createLogger } from "../../src/logger.js";
import type { GraphQLResult, TestServer } from "../helpers/server.js";
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

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text format (one sample per line, # lines are metadata). */
export function parseMetrics(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) types.set(type[1]!, type[2]!);
    if (line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) throw new Error(`not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[key!] = value!;
    }
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return { samples, types };
}

/** GET /metrics as Prometheus reads it; `url` defaults to the public port's. */
export async function scrape(server: Pick<TestServer, "baseUrl">, token?: string, url = `${server.baseUrl}/metrics`) {
  const response = await fetch(url, token ? { headers: { authorization: `Bearer ${token}` } } : {});
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseMetrics(await response.text());
}

export const value = (samples: Sample[], name: string, labels: Record<string, string> = {}) =>
  samples
    .filter((s) => s.name === name && Object.entries(labels).every(([key, v]) => s.labels[key] === v))
    .reduce((sum, s) => sum + s.value, 0);

export const has = (samples: Sample[], name: string) => samples.some((s) => s.name === name);
