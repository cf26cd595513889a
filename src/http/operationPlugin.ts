// One structured log line per GraphQL operation over HTTP (request id,
// operation name, duration, viewer, outcome, SQL statements; WebSocket
// operations get theirs from websocket.ts), the full details of unexpected
// errors, and, with GRAPHQL_QUERY_STATS=1, `extensions.queryStats` on every
// response. The statement count comes from the counting driver adapter
// (db/queryStats.ts), scoped to this request by the HTTP layer.
import type { ApolloServerPlugin } from "@apollo/server";
import type { GraphQLContext } from "../context.js";
import { currentQueryStats } from "../db/queryStats.js";
import type { Logger } from "../logger.js";
import { AppError } from "../errors.js";
import { clientCodes, isUnexpectedError } from "./formatError.js";
import { currentRequestId } from "./requestId.js";

export interface OperationObserver {
  /** Called once per finished operation, for metrics. */
  onOperation?(report: OperationReport): void;
}

export interface OperationReport {
  operationName: string;
  operationType: string;
  outcome: "success" | "error";
  errorCodes: string[];
  durationMs: number;
  sqlStatements: number;
}

export function operationPlugin(options: {
  logger: Logger;
  queryStats: boolean;
  observer?: OperationObserver;
}): ApolloServerPlugin<GraphQLContext> {
  return {
    // The request was refused before it had a context (an invalid bearer
    // token): no operation ran, but it still gets its line and its count.
    async contextCreationDidFail({ error }) {
      const original = (error as { originalError?: unknown }).originalError ?? error;
      const known = original instanceof AppError ? original.code : undefined;
      const report: OperationReport = {
        operationName: "unknown",
        operationType: "unknown",
        outcome: "error",
        errorCodes: [known ?? "INTERNAL_SERVER_ERROR"],
        durationMs: 0,
        sqlStatements: currentQueryStats()?.sqlStatements ?? 0,
      };
      options.observer?.onOperation?.(report);
      const logger = options.logger.child({ requestId: currentRequestId() ?? null });
      if (known) logger.info({ transport: "http", ...report, viewerId: null }, "graphql operation");
      else logger.error({ err: original, ...report }, "context creation failed");
    },
    async requestDidStart({ contextValue }) {
      const started = performance.now();
      return {
        async didEncounterErrors({ errors }) {
          for (const error of errors) {
            if (isUnexpectedError(error, error)) {
              contextValue.logger.error({ err: error.originalError ?? error, path: error.path }, "unexpected error");
            }
          }
        },
        async willSendResponse({ response, operationName, operation, errors }) {
          const durationMs = Math.round((performance.now() - started) * 100) / 100;
          const sqlStatements = currentQueryStats()?.sqlStatements ?? 0;
          // The codes the client sees: after formatError, which translates
          // (a database outage becomes SERVICE_UNAVAILABLE) and masks.
          const sent = response.body.kind === "single" ? response.body.singleResult.errors : undefined;
          const errorCodes = clientCodes(sent ?? errors ?? []);
          const report: OperationReport = {
            operationName: operationName ?? "anonymous",
            operationType: operation?.operation ?? "unknown",
            outcome: errorCodes.length ? "error" : "success",
            errorCodes,
            durationMs,
            sqlStatements,
          };
          options.observer?.onOperation?.(report);
          contextValue.logger.info(
            { transport: "http", ...report, viewerId: contextValue.viewer?.id ?? null },
            "graphql operation",
          );
          if (options.queryStats && response.body.kind === "single") {
            response.body.singleResult.extensions = {
              ...response.body.singleResult.extensions,
              queryStats: { sqlStatements, durationMs },
            };
          }
        },
      };
    },
  };
}
