// The Apollo Client setup of the README ("Using it from a web app"), word for
// word between the markers: tests/clients/apolloClient.test.ts runs it against
// the real server, and checks that the README still shows exactly this code.
// README:web-client:start
import {
  ApolloClient,
  ApolloLink,
  CombinedGraphQLErrors,
  HttpLink,
  InMemoryCache,
  type DocumentNode,
  type OperationVariables,
} from "@apollo/client";
import { SetContextLink } from "@apollo/client/link/context";
import { GraphQLWsLink } from "@apollo/client/link/subscriptions";
import { relayStylePagination } from "@apollo/client/utilities";
import { createClient } from "graphql-ws";

/** What signUp, logIn, refreshSession and changePassword return. */
export interface SessionTokens {
  token: string;
  tokenExpiresAt: string;
  refreshToken: string;
}

const REFRESH = `mutation ($refreshToken: String!) {
  refreshSession(refreshToken: $refreshToken) { token tokenExpiresAt refreshToken }
}`;

/**
 * Holds the session's tokens and renews the access token before it expires.
 * A refresh token is single-use, and presenting a used one ends the whole
 * session: so one refresh at a time (with several tabs, let one of them refresh,
 * e.g. under navigator.locks, and share the result).
 */
export class Session {
  private refreshing: Promise<SessionTokens> | undefined;

  constructor(
    private readonly httpUrl: string,
    private tokens: SessionTokens | undefined,
    private readonly options: { refreshMarginMs?: number; fetch?: typeof fetch } = {},
  ) {}

  signedIn(tokens: SessionTokens): void {
    this.tokens = tokens;
  }

  /** An access token with at least refreshMarginMs (default 30 s) to live; refreshes first if need be. */
  async accessToken(): Promise<string | undefined> {
    if (!this.tokens) return undefined;
    const left = Date.parse(this.tokens.tokenExpiresAt) - Date.now();
    if (left > (this.options.refreshMarginMs ?? 30_000)) return this.tokens.token;
    return (await this.refresh()).token;
  }

  refresh(): Promise<SessionTokens> {
    this.refreshing ??= this.exchange().finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  private async exchange(): Promise<SessionTokens> {
    if (!this.tokens) throw new Error("Not signed in.");
    // No Authorization header: the refresh token is the credential, and an
    // expired access token would get the whole request refused (401).
    const response = await (this.options.fetch ?? fetch)(this.httpUrl, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: REFRESH, variables: { refreshToken: this.tokens.refreshToken } }),
    });
    const body = (await response.json()) as { data?: { refreshSession: SessionTokens }; errors?: { message: string }[] };
    if (!body.data) {
      // The session has ended (logOut elsewhere, password changed, refresh token reused): sign in again.
      this.tokens = undefined;
      throw new Error(body.errors?.[0]?.message ?? "The session could not be refreshed.");
    }
    this.tokens = body.data.refreshSession;
    return this.tokens;
  }
}

export function createApolloClient(options: {
  httpUrl: string;
  wsUrl: string;
  session: Session;
  /** Browsers have one; in Node, pass the `ws` package's WebSocket. */
  webSocketImpl?: unknown;
  fetch?: typeof fetch;
}) {
  const { session } = options;
  const auth = new SetContextLink(async (previous) => {
    const token = await session.accessToken();
    return token ? { headers: { ...previous.headers, authorization: `Bearer ${token}` } } : {};
  });
  const http = new HttpLink({ uri: options.httpUrl, ...(options.fetch ? { fetch: options.fetch } : {}) });
  const ws = new GraphQLWsLink(
    createClient({
      url: options.wsUrl,
      webSocketImpl: options.webSocketImpl,
      // Called for every new socket: the token is refreshed first when it is
      // about to expire (the server closes a socket with 4403 when its token
      // expires, and the next socket needs a fresh one).
      connectionParams: async () => {
        const token = await session.accessToken();
        return token ? { authorization: `Bearer ${token}` } : {};
      },
      // No silent re-subscribing with the original variables: a subscription
      // ends when its socket closes, and subscribeFrom() resumes it with `after`.
      retryAttempts: 0,
    }),
  );
  return new ApolloClient({
    link: ApolloLink.split(({ operationType }) => operationType === "subscription", ws, ApolloLink.from([auth, http])),
    cache: new InMemoryCache({
      // The schema's one union: fragments on its members need to know it.
      possibleTypes: { SpaceEvent: ["TodoEvent", "ListEvent"] },
      typePolicies: {
        Query: { fields: { spaces: relayStylePagination() } },
        Space: { fields: { lists: relayStylePagination() } },
        List: { fields: { todos: relayStylePagination(["completed"]) } },
        // Events carry no id: each one replaces the last.
        Subscription: { fields: { spaceActivity: { merge: false }, todoChanged: { merge: false } } },
      },
    }),
  });
}

/**
 * A subscription that survives its socket: when the socket closes (a server
 * restart, a deploy, the token expiring, the network), it subscribes again
 * with `after` set to the cursor of the last event it got, so the server
 * replays what it missed, with no gap and no duplicate. A GraphQL error
 * (NOT_FOUND, a cursor past the log's retention) ends it for good.
 */
export function subscribeFrom<Data>(
  client: ApolloClient,
  options: {
    query: DocumentNode;
    variables: OperationVariables;
    cursorOf: (data: Data) => string;
    onData: (data: Data) => void;
    onError?: (error: Error) => void;
    retryMs?: number;
  },
): () => void {
  let after: string | null = null;
  let stopped = false;
  let failed = false;
  let retry: ReturnType<typeof setTimeout> | undefined;
  let current: { unsubscribe(): void } | undefined;
  const start = () => {
    current = client.subscribe<Data>({ query: options.query, variables: { ...options.variables, after } }).subscribe({
      next: ({ data, error }) => {
        if (data) {
          after = options.cursorOf(data);
          options.onData(data);
        }
        if (error && CombinedGraphQLErrors.is(error)) failed = true;
        if (error) options.onError?.(error);
      },
      complete: () => {
        if (!stopped && !failed) retry = setTimeout(start, options.retryMs ?? 1000);
      },
    });
  };
  start();
  return () => {
    stopped = true;
    clearTimeout(retry);
    current?.unsubscribe();
  };
}
// README:web-client:end
