// GraphQL over HTTP (https://graphql.github.io/graphql-over-http/) status codes.
// Apollo Server answers a document that does not parse or validate, or
// variables that do not coerce, with 400 whatever the client accepts. The spec
// wants 4xx only with the application/graphql-response+json media type; a
// client that accepts only application/json (the legacy type) gets 200, since
// older clients treat any non-200 as a transport failure and lose the errors.
//
// This plugin chooses the response media type itself, with the same preference
// as Apollo (see preferredMediaType), and writes it on the response, so the
// status and the content type can never disagree.
import { HeaderMap, type ApolloServerPlugin } from "@apollo/server";
import { GraphQLError } from "graphql";

export const GRAPHQL_RESPONSE_JSON = "application/graphql-response+json; charset=utf-8";
export const LEGACY_JSON = "application/json; charset=utf-8";

// Request errors whose 400 becomes 200 for application/json: the request was
// well-formed GraphQL over HTTP; the GraphQL inside it was not.
const DOCUMENT_ERROR_CODES = new Set(["GRAPHQL_PARSE_FAILED", "GRAPHQL_VALIDATION_FAILED", "BAD_USER_INPUT"]);

export function graphqlResponseStatusPlugin(): ApolloServerPlugin {
  return {
    async requestDidStart() {
      return {
        // Without this, graphql-js would "execute" a subscription over HTTP by
        // calling its (absent) resolve function: an internal error for what is
        // a client mistake. Subscriptions are served by graphql-ws on this path.
        async didResolveOperation({ operation }) {
          if (operation?.operation !== "subscription") return;
          throw new GraphQLError("Subscriptions are served over WebSocket (graphql-transport-ws) on this path, not over HTTP.", {
            extensions: { code: "BAD_REQUEST", http: { status: 400, headers: new HeaderMap() } },
          });
        },
        async willSendResponse({ request, response }) {
          if (response.body.kind !== "single" || response.http.status !== 400) return;
          const mediaType = preferredMediaType(request.http?.headers.get("accept"));
          if (mediaType !== LEGACY_JSON) return;
          const errors = response.body.singleResult.errors ?? [];
          if (errors.length && errors.every((e) => DOCUMENT_ERROR_CODES.has(String(e.extensions?.code)))) {
            response.http.headers.set("content-type", LEGACY_JSON);
            response.http.status = 200;
          }
        },
      };
    },
  };
}

interface MediaRange {
  type: string;
  subtype: string;
  q: number;
  order: number;
}

function parseAccept(header: string): MediaRange[] {
  const ranges: MediaRange[] = [];
  header.split(",").forEach((part, order) => {
    const [range = "", ...parameters] = part.split(";").map((p) => p.trim().toLowerCase());
    const [type, subtype] = range.split("/");
    if (!type || !subtype) return;
    let q = 1;
    for (const parameter of parameters) {
      const [key, value] = parameter.split("=").map((p) => p.trim());
      if (key === "q") q = Number(value);
    }
    if (Number.isFinite(q) && q > 0) ranges.push({ type, subtype, q, order });
  });
  return ranges;
}

interface Match {
  q: number;
  // 2 for an exact type and subtype, 1 for "type/*", 0 for the full wildcard.
  specificity: number;
  order: number;
}

/** The range that applies to a media type: the most specific one (RFC 9110). */
function matchFor(ranges: MediaRange[], type: string, subtype: string): Match | undefined {
  let best: Match | undefined;
  for (const range of ranges) {
    if ((range.type !== type && range.type !== "*") || (range.subtype !== subtype && range.subtype !== "*")) continue;
    const specificity = range.type === type && range.subtype === subtype ? 2 : range.type === type ? 1 : 0;
    if (!best || specificity > best.specificity) best = { q: range.q, specificity, order: range.order };
  }
  return best;
}

/**
 * The JSON media type the response will be sent as, chosen like Apollo Server
 * (through the negotiator package): higher q, then the more specific range,
 * then the one listed first; application/json on a complete tie and when
 * there is no Accept header. Undefined when the client accepts neither
 * (Apollo then answers 406).
 */
export function preferredMediaType(accept: string | undefined | null): string | undefined {
  if (!accept) return LEGACY_JSON;
  const ranges = parseAccept(accept);
  const json = matchFor(ranges, "application", "json");
  const graphql = matchFor(ranges, "application", "graphql-response+json");
  if (!json && !graphql) return undefined;
  if (!graphql) return LEGACY_JSON;
  if (!json) return GRAPHQL_RESPONSE_JSON;
  const preferJson =
    json.q !== graphql.q
      ? json.q > graphql.q
      : json.specificity !== graphql.specificity
        ? json.specificity > graphql.specificity
        : json.order <= graphql.order;
  return preferJson ? LEGACY_JSON : GRAPHQL_RESPONSE_JSON;
}
