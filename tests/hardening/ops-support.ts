// Small helpers for the operational tests (rate limits, metrics, logging,
// outage, shutdown): free ports, a private redis-server, a GraphQL POST with
// arbitrary headers, and a log sink that captures pino's JSON lines.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { Redis } from "ioredis";
import type { Logger } from "pino";
import { createLogger } from "../../src/logger.js";
import type { GraphQLResult } from "../helpers/server.js";
import { freePort } from "../helpers/process.js";

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export { freePort };

export interface PrivateRedis {
  url: string;
  /** SIGSTOP: the connection stays open but nothing answers. */
  pause(): void;
  /** SIGCONT after pause(). */
  resume(): void;
  /** Stops the server (connections are refused afterwards). */
  stop(): Promise<void>;
}

/** A redis-server of its own on a free port, keeping nothing on disk. */
export async function startPrivateRedis(): Promise<PrivateRedis> {
  const port = await freePort();
  const dir = await mkdtemp(path.join(os.tmpdir(), "todo-redis-"));
  const child: ChildProcess = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir],
    { stdio: "ignore" },
  );
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = `redis://127.0.0.1:${port}`;
  const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on("error", () => undefined);
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      await probe.connect();
      await probe.ping();
      break;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await sleep(50);
    }
  }
  probe.disconnect();
  let stopped = false;
  return {
    url,
    pause: () => void child.kill("SIGSTOP"),
    resume: () => void child.kill("SIGCONT"),
    async stop() {
      if (stopped) return;
      stopped = true;
      child.kill("SIGCONT");
      child.kill("SIGKILL");
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

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

