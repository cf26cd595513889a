// The last stop of every error on its way to a client, for the errors that do
// not come from a resolver (which the API tests cover through the server):
// what graphql-ws wraps from a subscription's stream, and Apollo's request
// errors without a code.
import { GraphQLError } from "graphql";
import { describe, expect, it } from "vitest";
import { Prisma } from "../../src/generated/prisma/client.js";
import { formatError, isUnexpectedError } from "../../src/http/formatError.js";

const format = (error: GraphQLError) => formatError(error.toJSON(), error);

// How graphql-ws 6 wraps whatever a subscription's event stream throws: a
// GraphQLError with the thrown error as originalError, and no path or code.
const fromStream = (thrown: Error) => new GraphQLError(thrown.message, { originalError: thrown });

describe("errors thrown by a subscription's event stream", () => {
  it("masks a fault as INTERNAL_SERVER_ERROR and marks it unexpected (to be logged)", () => {
    const error = fromStream(new TypeError("Cannot read properties of undefined (reading 'id') at /srv/app/src/realtime/stream.ts:42"));
    expect(format(error)).toEqual({ message: "Something went wrong on our side.", extensions: { code: "INTERNAL_SERVER_ERROR" } });
    expect(isUnexpectedError(error.toJSON(), error)).toBe(true);
  });

  it("reads a database outage as SERVICE_UNAVAILABLE, by code as well as by message", () => {
    for (const thrown of [
      new Prisma.PrismaClientKnownRequestError("Timed out fetching a new connection from the connection pool.", { code: "P2024", clientVersion: "6.19.0" }),
      new Prisma.PrismaClientKnownRequestError("Transaction API error: Transaction already closed.", { code: "P2028", clientVersion: "6.19.0" }),
      new Error("connect ECONNREFUSED 127.0.0.1:5432"),
    ]) {
      const error = fromStream(thrown);
      expect(format(error).extensions?.code, thrown.message).toBe("SERVICE_UNAVAILABLE");
      expect(isUnexpectedError(error.toJSON(), error)).toBe(false);
    }
  });
});

describe("request errors without a code", () => {
  it("keeps a codeless error with no cause as a document error (graphql-ws's 'Unable to identify operation')", () => {
    const error = new GraphQLError("Unable to identify operation");
    expect(format(error)).toEqual({ message: "Unable to identify operation", extensions: { code: "GRAPHQL_VALIDATION_FAILED" } });
    expect(isUnexpectedError(error.toJSON(), error)).toBe(false);
  });

  it("gives Apollo's APQ errors the ERRORS.md code BAD_REQUEST and keeps the message clients match on", () => {
    for (const [message, code] of [
      ["PersistedQueryNotFound", "PERSISTED_QUERY_NOT_FOUND"],
      ["PersistedQueryNotSupported", "PERSISTED_QUERY_NOT_SUPPORTED"],
    ]) {
      const error = new GraphQLError(message!, { extensions: { code } });
      expect(format(error)).toEqual({ message, extensions: { code: "BAD_REQUEST" } });
    }
  });
});
