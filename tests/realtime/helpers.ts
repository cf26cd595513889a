// Shared helpers for the realtime tests: a graphql-ws client (the real one,
// over `ws`) whose subscriptions record what they receive, the domain
// mutations over HTTP, and a small fixture of users in a space.
//
// graphql-ws has no "subscription is active" acknowledgement, so a test that
// must not miss its first event calls untilLive(): it writes probe changes
// until one of them is delivered. Every later change is then delivered too.
import { createClient, type Client, type FormattedExecutionResult } from "graphql-ws";
import { Redis } from "ioredis";
import WebSocket from "ws";
import { afterAll, beforeAll } from "vitest";
import type { RawPrismaClient } from "../../src/db/database.js";
import type { Prisma } from "../../src/generated/prisma/client.js";
import { createEventCursors } from "../../src/realtime/eventCursor.js";
import { afterPosition, LOG_ORDER, LOG_ORDER_NEWEST_FIRST, positionOf } from "../../src/realtime/eventLog.js";
import { signUp, startTestServer, TEST_JWT_SECRET, type TestServer } from "../helpers/server.js";
import { freePort } from "../helpers/process.js";

export const DEFAULT_WAIT_MS = 15_000;

/**
 * The log's events matching `where` after the event `afterId` and up to the
 * event `throughId`, in the log's (txid, id) order: exactly what a subscriber
 * resuming after `afterId` must have received by `throughId`.
 */
export async function logBetween(prisma: RawPrismaClient, where: Prisma.EventWhereInput, afterId: bigint, throughId: bigint) {
  const [after, through] = await Promise.all(
    [afterId, throughId].map(async (id) => positionOf(await prisma.event.findUniqueOrThrow({ where: { id } }))),
  );
  return prisma.event.findMany({
    where: { AND: [where, afterPosition(after!), { NOT: afterPosition(through!) }] },
    orderBy: LOG_ORDER,
  });
}

/** The newest event matching `where`, in log order. */
export const newestEvent = (prisma: RawPrismaClient, where: Prisma.EventWhereInput) =>
  prisma.event.findFirstOrThrow({ where, orderBy: LOG_ORDER_NEWEST_FIRST });

/**
 * The event cursors of every test server that keeps the default JWT_SECRET,
 * so a test can read the log id a cursor stands for (clients cannot).
 */
export const testCursors = createEventCursors(new TextEncoder().encode(TEST_JWT_SECRET));

/**
 * The realtime suites run over the Redis bus when REDIS_URL (or CI's
 * REDIS_URL_FOR_TESTS) is set, and over the in-process bus otherwise. Other
 * test processes may share that Redis: the bus only carries wake-ups, so
 * their messages cause at most an extra read of the log.
 *
 * The server keeps its sign-up rate limit in the same Redis, per client
 * address, and every test signs up from 127.0.0.1: with the default limit
 * (100 an hour) a few runs would lock every suite on that Redis out for an
 * hour. A one-second window leaves no counter behind.
 */
export function realtimeEnv(): Record<string, string> {
  const url = process.env.REDIS_URL || process.env.REDIS_URL_FOR_TESTS;
  return url ? { REDIS_URL: url, RATE_LIMIT_SIGNUP_PER_ADDRESS: "100000", RATE_LIMIT_SIGNUP_WINDOW: "1s" } : {};
}

/**
 * One server per test file, with the realtime settings above plus `env`, and
 * the function that opens a connection to it; every connection opened is
 * closed when the file ends, then the server.
 */
export function realtimeServerPerFile(ready: (server: TestServer) => void, env: Record<string, string> = {}) {
  let started: TestServer | undefined;
  const connections: Connection[] = [];
  beforeAll(async () => {
    started = await startTestServer({ env: { ...realtimeEnv(), ...env } });
    ready(started);
  });
  afterAll(async () => {
    await Promise.all(connections.map((connection) => connection.dispose()));
    await started?.close();
  });
  return (token?: string): Connection => {
    if (!started) throw new Error("The test server has not started yet.");
    const connection = connect(started, token);
    connections.push(connection);
    return connection;
  };
}

// ---------------------------------------------------------------- ws client

export interface Closed {
  code: number;
  reason: string;
}

export interface Connection {
  client: Client;
  /** Resolves with the close code the first time the socket closes. */
  closed: Promise<Closed>;
  subscribe<T = Record<string, unknown>>(query: string, variables?: Record<string, unknown>): Stream<T>;
  dispose(): Promise<void>;
}

/** Opens a graphql-ws connection; `token` goes to connectionParams.authorization. */
export function connect(server: Pick<TestServer, "wsUrl">, token?: string): Connection {
  let onClosed: (closed: Closed) => void = () => undefined;
  const closed = new Promise<Closed>((resolve) => (onClosed = resolve));
  const client = createClient({
    url: server.wsUrl,
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    lazy: false,
    connectionParams: token ? { authorization: `Bearer ${token}` } : {},
    onNonLazyError: () => undefined,
    on: {
      closed: (event) => {
        const { code, reason } = event as { code: number; reason: unknown };
        onClosed({ code, reason: String(reason ?? "") });
      },
    },
  });
  return {
    client,
    closed,
    subscribe: (query, variables) => new Stream(client, query, variables),
    dispose: () => client.dispose() as Promise<void>,
  };
}

export interface StreamError {
  code: string | undefined;
  message: string;
  /** `extensions.field`, on errors that have one. */
  field?: string;
}

/**
 * One subscription: every payload it receives, in order, with a read position
 * so a test can wait for "the next items up to X" without ever sleeping.
 */
export class Stream<T> {
  readonly received: T[] = [];
  readonly errors: StreamError[] = [];
  completed = false;
  private position = 0;
  private readonly listeners = new Set<() => void>();
  private readonly unsubscribe: () => void;

  constructor(client: Client, query: string, variables?: Record<string, unknown>) {
    this.unsubscribe = client.subscribe<T>(
      { query, variables },
      {
        next: (result: FormattedExecutionResult<T>) => {
          if (result.errors?.length) this.errors.push(...result.errors.map(toStreamError));
          else if (result.data) this.received.push(result.data);
          this.changed();
        },
        error: (error: unknown) => {
          this.errors.push(...(Array.isArray(error) ? error.map(toStreamError) : [toStreamError(error)]));
          this.changed();
        },
        complete: () => {
          this.completed = true;
          this.changed();
        },
      },
    );
  }

  /** Stops the subscription (sends `complete` to the server). */
  close(): void {
    this.unsubscribe();
  }

  /**
   * Everything received after the read position, up to and including the
   * first item matching `last`; moves the read position past it.
   */
  async until(last: (item: T) => boolean, what = "the expected event", timeoutMs = DEFAULT_WAIT_MS): Promise<T[]> {
    let found = -1;
    await this.waitFor(() => {
      found = this.received.findIndex((item, index) => index >= this.position && last(item));
      return found >= 0;
    }, what, timeoutMs);
    const items = this.received.slice(this.position, found + 1);
    this.position = found + 1;
    return items;
  }

  /** The next item after the read position. */
  async next(timeoutMs = DEFAULT_WAIT_MS): Promise<T> {
    const [item] = await this.until(() => true, "the next event", timeoutMs);
    return item as T;
  }

  /** The next `count` items after the read position. */
  async take(count: number, timeoutMs = DEFAULT_WAIT_MS): Promise<T[]> {
    await this.waitFor(() => this.received.length - this.position >= count, `${count} events`, timeoutMs);
    const items = this.received.slice(this.position, this.position + count);
    this.position += count;
    return items;
  }

  /** The first error the subscription ends with (a `next` with errors, or `error`). */
  async failure(timeoutMs = DEFAULT_WAIT_MS): Promise<StreamError> {
    await this.waitFor(() => this.errors.length > 0, "an error", timeoutMs);
    return this.errors[0] as StreamError;
  }

  async ended(timeoutMs = DEFAULT_WAIT_MS): Promise<void> {
    await this.waitFor(() => this.completed || this.errors.length > 0, "the end of the subscription", timeoutMs);
  }

  /** Items received but not yet read. */
  unread(): T[] {
    return this.received.slice(this.position);
  }

  /** Marks everything received so far as read. */
  skipAll(): void {
    this.position = this.received.length;
  }

  private changed(): void {
    for (const listener of [...this.listeners]) listener();
  }

  private waitFor(condition: () => boolean, what: string, timeoutMs: number): Promise<void> {
    if (condition()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (condition()) {
          done();
          resolve();
        } else if (this.errors.length > 0 && what !== "an error" && what !== "the end of the subscription") {
          done();
          reject(new Error(`Subscription failed while waiting for ${what}: ${JSON.stringify(this.errors)}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new Error(
            `Timed out after ${timeoutMs} ms waiting for ${what}; unread: ${JSON.stringify(this.unread())}; errors: ${JSON.stringify(this.errors)}`,
          ),
        );
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.listeners.delete(check);
      };
      this.listeners.add(check);
    });
  }
}

function toStreamError(error: unknown): StreamError {
  if (error && typeof error === "object" && "message" in error) {
    const { message, extensions } = error as { message: unknown; extensions?: { code?: unknown; field?: unknown } };
    return {
      code: typeof extensions?.code === "string" ? extensions.code : undefined,
      message: String(message),
      ...(typeof extensions?.field === "string" ? { field: extensions.field } : {}),
    };
  }
  // A CloseEvent (the socket closed under the subscription) or anything else.
  const code = (error as { code?: unknown } | null)?.code;
  return { code: code === undefined ? undefined : `CLOSE_${String(code)}`, message: String(error) };
}

/**
 * Writes probe changes until the stream delivers one, so the subscription is
 * known to be registered on the server. Probe deliveries are consumed; tests
 * leave any late probe events out by their id.
 */
export async function untilLive<T>(
  stream: Stream<T>,
  probe: () => Promise<unknown>,
  isProbe: (item: T) => boolean,
): Promise<void> {
  // Each attempt waits a little longer; the total stays well under a test's timeout.
  for (let attempt = 1; attempt <= 12; attempt++) {
    await probe();
    try {
      await stream.until(isProbe, "a probe event", 100 * attempt);
      return;
    } catch (error) {
      if (stream.errors.length > 0) throw error;
    }
  }
  throw new Error("The subscription never delivered a probe event.");
}

/** Resolves when `condition` holds, polling a database-side fact (bounded). */
export async function eventually(condition: () => Promise<boolean>, what: string, timeoutMs = DEFAULT_WAIT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

// ------------------------------------------------------- domain over HTTP

type Gql = Pick<TestServer, "gql">;

async function call<Data>(server: Gql, token: string, query: string, variables: Record<string, unknown>): Promise<Data> {
  const result = await server.gql<Data>(query, variables, token);
  if (result.errors?.length || !result.data) throw new Error(`GraphQL failed: ${JSON.stringify(result.errors)}`);
  return result.data;
}

export interface Todo {
  id: string;
  title: string;
  completed: boolean;
}

export interface ListRow {
  id: string;
  title: string;
  private: boolean;
}

/** The product's mutations, as one signed-in user. */
export function api(server: Gql, token: string) {
  return {
    createSpace: async (name = "Realtime space") =>
      (
        await call<{ createSpace: { id: string } }>(server, token, `mutation ($input: CreateSpaceInput!) { createSpace(input: $input) { id } }`, {
          input: { name, slug: `rt${Math.random().toString(36).slice(2, 12)}` },
        })
      ).createSpace.id,
    addMember: async (spaceId: string, email: string, role: "USER" | "ADMIN" = "USER") =>
      (
        await call<{ addSpaceMember: { id: string } }>(
          server,
          token,
          `mutation ($spaceId: ID!, $email: String!, $role: SpaceRole) { addSpaceMember(spaceId: $spaceId, email: $email, role: $role) { id } }`,
          { spaceId, email, role },
        )
      ).addSpaceMember.id,
    removeMember: async (membershipId: string) =>
      (await call<{ removeSpaceMember: string }>(server, token, `mutation ($id: ID!) { removeSpaceMember(id: $id) }`, { id: membershipId }))
        .removeSpaceMember,
    createList: async (spaceId: string, title: string, isPrivate = false) =>
      (
        await call<{ createList: ListRow }>(
          server,
          token,
          `mutation ($input: CreateListInput!) { createList(input: $input) { id title private } }`,
          { input: { spaceId, title, private: isPrivate } },
        )
      ).createList,
    updateList: async (id: string, input: { title?: string; private?: boolean }) =>
      (
        await call<{ updateList: ListRow }>(server, token, `mutation ($id: ID!, $input: UpdateListInput!) { updateList(id: $id, input: $input) { id title private } }`, {
          id,
          input,
        })
      ).updateList,
    deleteList: async (id: string) =>
      (await call<{ deleteList: string }>(server, token, `mutation ($id: ID!) { deleteList(id: $id) }`, { id })).deleteList,
    createTodo: async (listId: string, title: string) =>
      (
        await call<{ createTodo: Todo }>(server, token, `mutation ($input: CreateTodoInput!) { createTodo(input: $input) { id title completed } }`, {
          input: { listId, title },
        })
      ).createTodo,
    updateTodo: async (id: string, input: { title?: string; completed?: boolean }) =>
      (
        await call<{ updateTodo: Todo }>(server, token, `mutation ($id: ID!, $input: UpdateTodoInput!) { updateTodo(id: $id, input: $input) { id title completed } }`, {
          id,
          input,
        })
      ).updateTodo,
    deleteTodo: async (id: string) =>
      (await call<{ deleteTodo: string }>(server, token, `mutation ($id: ID!) { deleteTodo(id: $id) }`, { id })).deleteTodo,
  };
}

export type Api = ReturnType<typeof api>;

export interface Member {
  token: string;
  id: string;
  email: string;
  api: Api;
  membershipId: string;
}

/** An admin and `others` members in a fresh space. */
export async function spaceWithMembers(server: TestServer, others: number) {
  const admin = await signUp(server);
  const adminApi = api(server, admin.token);
  const spaceId = await adminApi.createSpace();
  const members: Member[] = [];
  for (let index = 0; index < others; index++) {
    const user = await signUp(server);
    const membershipId = await adminApi.addMember(spaceId, user.email);
    members.push({ token: user.token, id: user.user.id, email: user.email, api: api(server, user.token), membershipId });
  }
  return { spaceId, admin: { token: admin.token, id: admin.user.id, email: admin.email, api: adminApi }, members };
}

// -------------------------------------------------------------- operations

export const TODO_CHANGED = `subscription ($listId: ID!) {
  todoChanged(listId: $listId) { kind todoId listId cursor todo { id title completed list { id } owner { id } } }
}`;

export const SPACE_ACTIVITY = `subscription ($spaceId: ID!, $after: String) {
  spaceActivity(spaceId: $spaceId, after: $after) {
    __typename
    ... on TodoEvent { kind todoId listId cursor todo { id title completed } }
    ... on ListEvent { kind listId spaceId cursor list { id title private } }
  }
}`;

export interface TodoEventData {
  kind: "CREATED" | "UPDATED" | "DELETED";
  todoId: string;
  listId: string;
  cursor: string;
  todo: (Todo & { list?: { id: string }; owner?: { id: string } }) | null;
}

export interface ListEventData {
  kind: "CREATED" | "UPDATED" | "DELETED";
  listId: string;
  spaceId: string;
  cursor: string;
  list: ListRow | null;
}

export type SpaceEventData =
  | ({ __typename: "TodoEvent" } & TodoEventData)
  | ({ __typename: "ListEvent" } & ListEventData & { todoId?: undefined });

export type TodoChanged = { todoChanged: TodoEventData };
export type SpaceActivity = { spaceActivity: SpaceEventData };

/** A compact description of a space event, for order-sensitive assertions. */
export const describeEvent = (event: SpaceEventData) =>
  `${event.__typename === "TodoEvent" ? "todo" : "list"}:${event.kind}:${event.__typename === "TodoEvent" ? event.todoId : event.listId}`;

// ------------------------------------------------------- a private redis

export { freePort };

export { PrivateRedis } from "../helpers/redis.js";
