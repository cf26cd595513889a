// Apollo Client 4 end to end, as a web app uses it: the README's setup
// (tests/clients/webClient.ts: HttpLink with a refreshing auth link,
// GraphQLWsLink over graphql-ws with connectionParams that refresh first,
// InMemoryCache with relayStylePagination) against the real server on a free
// port, on the suite's database. Access tokens live 4 seconds here, so the
// refreshes a real app does every 15 minutes happen within the test.
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { CombinedGraphQLErrors, gql, type ApolloClient } from "@apollo/client";
import { afterAll, beforeAll, describe, expect, it, vi, type MockInstance } from "vitest";
import WebSocket from "ws";
import { createTestDatabase, usePostgres, type TestDatabase } from "../helpers/database.js";
import { freePort } from "../helpers/process.js";
import { startTestServer, uniqueEmail, type TestServer } from "../helpers/server.js";
import { createApolloClient, Session, subscribeFrom, type SessionTokens } from "./webClient.js";

const TOKEN_TTL = "4s";
// Refresh when less than this is left: the test's stand-in for the default 30 s.
const REFRESH_MARGIN_MS = 1500;

let database: TestDatabase;
let server: TestServer;
let port: number;
let pgliteDir: string | undefined;
const startServer = async () =>
  (server = await startTestServer({ database, env: { PORT: String(port), JWT_TTL: TOKEN_TTL, REFRESH_TOKEN_TTL: "1h" } }));

// What the client sent, by operation name, and the close codes its sockets saw.
const sent: string[] = [];
const countingFetch: typeof fetch = async (input, init) => {
  const body = JSON.parse(String(init?.body ?? "{}")) as { operationName?: string; query?: string };
  sent.push(body.operationName ?? (body.query?.includes("refreshSession") ? "refreshSession" : "anonymous"));
  return fetch(input, init);
};
const closeCodes: number[] = [];
let offline = false;
/** The `ws` WebSocket, but one that cannot connect while `offline`, and records how each socket closed. */
class TestWebSocket extends WebSocket {
  constructor(url: string | URL, protocols?: string | string[]) {
    // Port 1 refuses at once: what a client sees while the network or the server is down.
    super(offline ? "ws://127.0.0.1:1/graphql" : url, protocols);
    this.on("close", (code) => closeCodes.push(code));
  }
}

let session: Session;
let client: ApolloClient;
let warnings: MockInstance[];

beforeAll(async () => {
  // A database that outlives a server, for the restart.
  if (usePostgres) database = await createTestDatabase();
  else {
    pgliteDir = await mkdtemp(path.join(os.tmpdir(), "todo-apollo-"));
    database = { config: { kind: "pglite", dataDir: pgliteDir }, url: undefined, drop: async () => undefined };
  }
  port = await freePort();
  await startServer();
  session = new Session(server.url, undefined, { refreshMarginMs: REFRESH_MARGIN_MS, fetch: countingFetch });
  client = createApolloClient({ httpUrl: server.url, wsUrl: server.wsUrl, session, webSocketImpl: TestWebSocket, fetch: countingFetch });
  // Apollo reports cache problems (missing ids, data lost on merge) through
  // console.warn/error, in development builds as here.
  warnings = (["warn", "error"] as const).map((level) => vi.spyOn(console, level));
});

afterAll(async () => {
  client?.stop();
  await server?.close();
  await database?.drop();
  if (pgliteDir) await rm(pgliteDir, { recursive: true, force: true });
});

const consoleOutput = () => warnings.flatMap((spy) => spy.mock.calls.map((args) => args.map(String).join(" ")));

const SIGN_UP = gql`
  mutation SignUp($input: SignUpInput!) {
    signUp(input: $input) { token tokenExpiresAt refreshToken user { id email } }
  }
`;
const CREATE_SPACE = gql`
  mutation CreateSpace($input: CreateSpaceInput!) { createSpace(input: $input) { id name slug } }
`;
const CREATE_LIST = gql`
  mutation CreateList($input: CreateListInput!) { createList(input: $input) { id title } }
`;
const CREATE_TODO = gql`
  mutation CreateTodo($input: CreateTodoInput!) { createTodo(input: $input) { id title completed } }
`;
const UPDATE_TODO = gql`
  mutation UpdateTodo($id: ID!, $input: UpdateTodoInput!) { updateTodo(id: $id, input: $input) { id title completed completedAt } }
`;
const SPACE = gql`
  query Space($id: ID!, $after: String) {
    space(id: $id) {
      id
      name
      viewerRole
      owner { id name }
      members { id role user { id email } }
      lists(first: 5) {
        edges {
          cursor
          node {
            id
            title
            owner { id name }
            todos(first: 2, after: $after) {
              edges { cursor node { id title completed owner { id } } }
              pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
              totalCount
            }
          }
        }
        pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
      }
    }
  }
`;
const SPACE_ACTIVITY = gql`
  subscription SpaceActivity($spaceId: ID!, $after: String) {
    spaceActivity(spaceId: $spaceId, after: $after) {
      __typename
      ... on TodoEvent { kind todoId cursor todo { id title completed } }
      ... on ListEvent { kind listId cursor }
    }
  }
`;

interface SpaceData {
  space: {
    id: string;
    lists: {
      edges: {
        node: {
          id: string;
          todos: {
            edges: { cursor: string; node: { id: string; title: string; completed: boolean } }[];
            pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; startCursor: string | null; endCursor: string | null };
            totalCount: number;
          };
        };
      }[];
    };
  };
}
type ActivityData = { spaceActivity: { __typename: string; kind: string; cursor: string; todo?: { id: string; title: string } | null } };

let spaceId: string;
let listId: string;
const todoIds: string[] = [];

async function createTodo(title: string) {
  const { data } = await client.mutate({ mutation: CREATE_TODO, variables: { input: { listId, title } } });
  return (data as { createTodo: { id: string } }).createTodo.id;
}

async function until(condition: () => boolean, what: string, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("Apollo Client 4 against the server", () => {
  it("signs up and keeps the session's tokens", async () => {
    const { data } = await client.mutate({ mutation: SIGN_UP, variables: { input: { email: uniqueEmail("apollo"), password: "correct-horse-1" } } });
    const signUp = (data as { signUp: SessionTokens & { user: { id: string } } }).signUp;
    expect(signUp.refreshToken).toEqual(expect.any(String));
    session.signedIn(signUp);

    spaceId = ((await client.mutate({ mutation: CREATE_SPACE, variables: { input: { name: "Apollo team", slug: `ap${Date.now() % 1e9}` } } })).data as {
      createSpace: { id: string };
    }).createSpace.id;
    listId = ((await client.mutate({ mutation: CREATE_LIST, variables: { input: { spaceId, title: "Groceries" } } })).data as { createList: { id: string } })
      .createList.id;
    for (const title of ["Milk", "Eggs", "Bread", "Butter"]) todoIds.push(await createTodo(title));
  });

  it("normalizes a nested query with no cache warnings, and an updateTodo updates the cache without a refetch", async () => {
    const watched = client.watchQuery<SpaceData>({ query: SPACE, variables: { id: spaceId } });
    const results: SpaceData[] = [];
    const subscription = watched.subscribe(({ data, dataState }) => {
      if (dataState === "complete") results.push(data as SpaceData);
    });
    try {
      await until(() => results.length === 1, "the first result");
      const todos = results[0]!.space.lists.edges[0]!.node.todos;
      expect(todos.edges.map((edge) => edge.node.title)).toEqual(["Milk", "Eggs"]);
      expect(todos.pageInfo).toMatchObject({ hasNextPage: true, hasPreviousPage: false, startCursor: todos.edges[0]!.cursor });
      // Normalized: the todo is one cache entry, whatever path reached it.
      expect((client.cache.extract() as Record<string, unknown>)[`Todo:${todoIds[0]}`]).toMatchObject({ title: "Milk", completed: false });

      const queriesBefore = sent.filter((name) => name === "Space").length;
      await client.mutate({ mutation: UPDATE_TODO, variables: { id: todoIds[0], input: { title: "Oat milk", completed: true } } });
      await until(() => results.length === 2, "the watched query to see the update");
      expect(results[1]!.space.lists.edges[0]!.node.todos.edges[0]!.node).toMatchObject({ title: "Oat milk", completed: true });
      expect(sent.filter((name) => name === "Space").length).toBe(queriesBefore);
    } finally {
      subscription.unsubscribe();
    }
    expect(consoleOutput()).toEqual([]);
  });

  it("pages with fetchMore, merged by relayStylePagination", async () => {
    const watched = client.watchQuery<SpaceData>({ query: SPACE, variables: { id: spaceId } });
    const latest: { data?: SpaceData } = {};
    const subscription = watched.subscribe(({ data, dataState }) => {
      if (dataState === "complete") latest.data = data as SpaceData;
    });
    try {
      await until(() => latest.data !== undefined, "the first page");
      const first = latest.data!.space.lists.edges[0]!.node.todos;
      await watched.fetchMore({ variables: { after: first.pageInfo.endCursor } });
      await until(() => latest.data!.space.lists.edges[0]!.node.todos.edges.length === 4, "the merged pages");
      const merged = latest.data!.space.lists.edges[0]!.node.todos;
      expect(merged.edges.map((edge) => edge.node.id)).toEqual(todoIds);
      expect(merged.pageInfo).toMatchObject({ hasNextPage: false, hasPreviousPage: false, startCursor: first.pageInfo.startCursor });
      expect(merged.totalCount).toBe(4);
    } finally {
      subscription.unsubscribe();
    }
    expect(consoleOutput()).toEqual([]);
  });

  it("reads error codes through CombinedGraphQLErrors", async () => {
    const missing = await client.mutate({ mutation: UPDATE_TODO, variables: { id: "nosuchtodo", input: { title: "x" } }, errorPolicy: "all" });
    expect(CombinedGraphQLErrors.is(missing.error)).toBe(true);
    expect((missing.error as CombinedGraphQLErrors).errors[0]?.extensions?.code).toBe("NOT_FOUND");

    const thrown = await client
      .mutate({ mutation: CREATE_SPACE, variables: { input: { name: "Bad slug", slug: "no!" } } })
      .then(() => undefined, (error: unknown) => error);
    expect(CombinedGraphQLErrors.is(thrown)).toBe(true);
    const [first] = (thrown as CombinedGraphQLErrors).errors;
    expect(first?.extensions).toMatchObject({ code: "BAD_USER_INPUT", field: "slug" });
  });

  it("keeps a subscription through a server restart and a token refresh, resuming with `after`", async () => {
    const received: ActivityData["spaceActivity"][] = [];
    const errors: Error[] = [];
    const stop = subscribeFrom<ActivityData>(client, {
      query: SPACE_ACTIVITY,
      variables: { spaceId },
      cursorOf: (data) => data.spaceActivity.cursor,
      onData: (data) => received.push(data.spaceActivity),
      onError: (error) => errors.push(error),
      retryMs: 200,
    });
    const titles = () => received.map((event) => event.todo?.title);
    const seen = (title: string) => () => titles().includes(title);
    try {
      // Live: writes until one arrives (the subscription starts without `after`).
      for (let attempt = 0; !received.length; attempt++) {
        await client.mutate({ mutation: UPDATE_TODO, variables: { id: todoIds[1], input: { title: `Eggs ${attempt}` } } });
        await until(() => received.length > 0, "the subscription to go live", 500).catch(() => undefined);
      }
      received.length = 0;
      await createTodo("Before the restart");
      await until(seen("Before the restart"), "a live event");

      // The server goes away, and the client cannot reach it for a while.
      offline = true;
      await server.close();
      await startServer();
      // Written while the subscription is down, through HTTP (refreshing the token as needed).
      await createTodo("During the restart 1");
      await createTodo("During the restart 2");
      const refreshesBefore = sent.filter((name) => name === "refreshSession").length;
      offline = false;
      await until(seen("During the restart 2"), "the replay after the restart");

      // The socket's token expires: the server closes it with 4403, and the
      // subscription comes back on a new socket, whose connectionParams refreshed first.
      const closesBefore = closeCodes.filter((code) => code === 4403).length;
      await until(() => closeCodes.filter((code) => code === 4403).length > closesBefore, "the socket to close on token expiry", 10_000);
      await createTodo("After the expiry");
      await until(seen("After the expiry"), "an event after the token refresh");
      expect(sent.filter((name) => name === "refreshSession").length).toBeGreaterThan(refreshesBefore);

      expect(titles()).toEqual(["Before the restart", "During the restart 1", "During the restart 2", "After the expiry"]);
      expect(new Set(received.map((event) => event.cursor)).size).toBe(received.length);
      expect(closeCodes).toContain(1001); // the restart
      expect(errors.some((error) => CombinedGraphQLErrors.is(error))).toBe(false);
    } finally {
      stop();
    }
    expect(consoleOutput()).toEqual([]);
  });

  it("is the code the README shows", async () => {
    const source = await readFile(new URL("./webClient.ts", import.meta.url), "utf8");
    const readme = await readFile(new URL("../../README.md", import.meta.url), "utf8");
    const code = /\/\/ README:web-client:start\n([\s\S]*?)\/\/ README:web-client:end/.exec(source)?.[1];
    expect(code?.length).toBeGreaterThan(1000);
    expect(readme).toContain(code);
  });
});
