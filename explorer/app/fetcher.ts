// How the explorer talks to the server it is served by: queries and mutations
// over HTTP POST, subscriptions over graphql-ws on the same path. The bearer
// token the user pasted goes in the Authorization header on HTTP and in
// connectionParams.authorization on the WebSocket (where the server reads it).
import { createGraphiQLFetcher, type Fetcher } from "@graphiql/toolkit";
import { createClient, type Client } from "graphql-ws";

export interface ExplorerConnection {
  fetcher: Fetcher;
  /** A new token (or "" for none): the socket is closed, and the next subscription reconnects with it. */
  setToken(token: string): void;
}

export function connectToServer(httpUrl: string, wsUrl: string, initialToken: string): ExplorerConnection {
  let token = initialToken;
  const authorization = () => (token ? `Bearer ${token}` : undefined);
  const connect = (): Client =>
    createClient({
      url: wsUrl,
      lazy: true,
      // Read at each (re)connection, so a new token is used from the next socket on.
      connectionParams: () => {
        const value = authorization();
        return value ? { authorization: value } : {};
      },
    });
  let wsClient = connect();
  const fetcherFor = (client: Client) =>
    createGraphiQLFetcher({
      url: httpUrl,
      wsClient: client,
      // The server answers application/json; there is no incremental delivery to ask for.
      enableIncrementalDelivery: false,
    });
  let inner = fetcherFor(wsClient);
  const fetcher: Fetcher = (params, options) => {
    const value = authorization();
    const typed: Record<string, unknown> = options?.headers ?? {};
    // An Authorization typed in GraphiQL's own headers editor wins over the token field.
    const typedAuthorization = Object.keys(typed).some((name) => name.toLowerCase() === "authorization");
    const headers = { ...(value && !typedAuthorization ? { authorization: value } : {}), ...typed };
    return inner(params, { ...options, headers });
  };
  return {
    fetcher,
    setToken(next) {
      if (next === token) return;
      token = next;
      void wsClient.dispose();
      wsClient = connect();
      inner = fetcherFor(wsClient);
    },
  };
}

/** A pasted token, without a "Bearer " prefix or surrounding blanks. */
export function cleanToken(text: string): string {
  return text.trim().replace(/^bearer\s+/i, "").trim();
}
