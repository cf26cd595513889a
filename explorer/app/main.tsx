// The explorer the server serves at GET /graphql (EXPLORER=graphiql):
// GraphiQL 5 with its explorer plugin, a field for a bearer token, and
// subscriptions over graphql-ws, talking to the server it is served by.
import "./workers.js";
import { explorerPlugin } from "@graphiql/plugin-explorer";
import { GraphiQL } from "graphiql";
import { StrictMode, useMemo, useState } from "react";
import { createRoot } from "react-dom/client";
import { cleanToken, connectToServer } from "./fetcher.js";
import "graphiql/style.css";
import "@graphiql/plugin-explorer/style.css";
import "./explorer.css";

const TOKEN_KEY = "todo-explorer:token";

const DEFAULT_QUERY = `# Sign up (or log in) to get a token, then paste it in the field above:
# every request then carries it, over HTTP and on the WebSocket.
#
# mutation { signUp(input: { email: "ada@example.com", password: "correct-horse-1" }) { token } }

query Me {
  me { id email name }
}
`;

const httpUrl = new URL(location.pathname, location.origin).href;
const wsUrl = httpUrl.replace(/^http/, "ws");
const params = new URLSearchParams(location.search);

function readStoredToken(): string {
  try {
    return localStorage.getItem(TOKEN_KEY) ?? "";
  } catch {
    return ""; // storage disabled: the token lasts as long as the page
  }
}

function storeToken(token: string) {
  try {
    if (token) localStorage.setItem(TOKEN_KEY, token);
    else localStorage.removeItem(TOKEN_KEY);
  } catch {
    // storage disabled: nothing to keep
  }
}

/** The query and variables in the address (?query=…&variables=…), kept up to date as they are edited. */
function updateAddress(name: "query" | "variables", value: string) {
  const next = new URLSearchParams(location.search);
  if (value) next.set(name, value);
  else next.delete(name);
  const search = next.toString();
  history.replaceState(null, "", `${location.pathname}${search ? `?${search}` : ""}`);
}

function Explorer() {
  const [token, setToken] = useState(readStoredToken);
  const connection = useMemo(() => connectToServer(httpUrl, wsUrl, token), []);
  const plugins = useMemo(() => [explorerPlugin()], []);
  const changeToken = (text: string) => {
    const cleaned = cleanToken(text);
    setToken(cleaned);
    storeToken(cleaned);
    connection.setToken(cleaned);
  };
  return (
    <div className="todo-explorer">
      <form className="todo-explorer-token" onSubmit={(event) => event.preventDefault()}>
        <label htmlFor="explorer-token">Bearer token</label>
        <input
          id="explorer-token"
          type="password"
          autoComplete="off"
          spellCheck={false}
          placeholder="paste the token from signUp or logIn"
          value={token}
          onChange={(event) => changeToken(event.target.value)}
        />
        <button type="button" onClick={() => changeToken("")} disabled={!token}>
          Clear
        </button>
        <output id="explorer-token-status">{token ? "requests carry this token" : "anonymous"}</output>
      </form>
      <GraphiQL
        fetcher={connection.fetcher}
        plugins={plugins}
        defaultQuery={DEFAULT_QUERY}
        initialQuery={params.get("query") ?? undefined}
        initialVariables={params.get("variables") ?? undefined}
        onEditQuery={(value) => updateAddress("query", value)}
        onEditVariables={(value) => updateAddress("variables", value)}
      />
    </div>
  );
}

const root = document.getElementById("root");
if (root) {
  createRoot(root).render(
    <StrictMode>
      <Explorer />
    </StrictMode>,
  );
}
