// Responses are never cached: every answer depends on the viewer. Apollo
// Server's own cache-control plugin (installed unless disabled) says so too,
// with `cache-control: no-store`, but to compute that it wraps every field
// resolver of the schema and runs a hook per resolved field, which this
// schema (no @cacheControl hints) never needs. It is replaced by one header
// per response. The inline-trace plugin is only for federated subgraphs.
import type { ApolloServerPlugin } from "@apollo/server";
import { ApolloServerPluginCacheControlDisabled, ApolloServerPluginInlineTraceDisabled } from "@apollo/server/plugin/disabled";

export function noStorePlugins(): ApolloServerPlugin[] {
  return [
    ApolloServerPluginCacheControlDisabled(),
    ApolloServerPluginInlineTraceDisabled(),
    {
      async requestDidStart() {
        return {
          async willSendResponse({ response }) {
            if (!response.http.headers.has("cache-control")) response.http.headers.set("cache-control", "no-store");
          },
        };
      },
    },
  ];
}
