// The public API contract (docs/api/contract.graphql, and the documents that
// extend it: docs/api/sessions.graphql) against the schema the server builds
// from schema/*.graphql. The server may add types, fields,
// optional arguments and operations; it may not drop or rename anything, change
// a type, or make the contract weaker: an output field the contract calls
// non-null stays non-null, and arguments and input fields keep exactly their
// type and default, so every operation written against the contract works.
import { existsSync, readFileSync } from "node:fs";
import {
  buildSchema,
  getNullableType,
  isEnumType,
  isInputObjectType,
  isInterfaceType,
  isListType,
  isNonNullType,
  isObjectType,
  isScalarType,
  isUnionType,
  type GraphQLArgument,
  type GraphQLInputField,
  type GraphQLOutputType,
  type GraphQLSchema,
} from "graphql";
import { makeExecutableSchema } from "@graphql-tools/schema";
import { describe, expect, it } from "vitest";
import { loadTypeDefs } from "../../src/schema.js";

const CONTRACT_URL = new URL("../../docs/api/contract.graphql", import.meta.url);
const SESSIONS_URL = new URL("../../docs/api/sessions.graphql", import.meta.url);

/** A document that extends contract.graphql, as one schema with it. */
const extended = (extension: string) => buildSchema(`${readFileSync(CONTRACT_URL, "utf8")}\n${extension}`);
// Extends contract.graphql (its `extend type` lines need the types they extend).
const WEBHOOKS_URL = new URL("../../docs/api/webhooks.graphql", import.meta.url);

/** Every way `served` fails to honour `contract`, one line each. */
export function contractViolations(contract: GraphQLSchema, served: GraphQLSchema): string[] {
  const problems: string[] = [];
  const outputHonours = (wanted: GraphQLOutputType, actual: GraphQLOutputType): boolean => {
    if (isNonNullType(wanted) && !isNonNullType(actual)) return false;
    const w = getNullableType(wanted);
    const a = getNullableType(actual);
    if (isListType(w) || isListType(a)) return isListType(w) && isListType(a) && outputHonours(w.ofType, a.ofType);
    return w.name === a.name;
  };
  const sameInput = (wanted: GraphQLArgument | GraphQLInputField, actual: GraphQLArgument | GraphQLInputField) =>
    String(wanted.type) === String(actual.type) && JSON.stringify(wanted.defaultValue) === JSON.stringify(actual.defaultValue);
  const describeInput = (input: GraphQLArgument | GraphQLInputField) =>
    `${String(input.type)}${input.defaultValue === undefined ? "" : ` = ${JSON.stringify(input.defaultValue)}`}`;
  const optional = (input: GraphQLArgument | GraphQLInputField) =>
    !isNonNullType(input.type) || input.defaultValue !== undefined;

  for (const wanted of Object.values(contract.getTypeMap())) {
    if (wanted.name.startsWith("__")) continue;
    const actual = served.getType(wanted.name);
    if (!actual) {
      problems.push(`type ${wanted.name} is missing`);
      continue;
    }
    if (isScalarType(wanted)) {
      if (!isScalarType(actual)) problems.push(`${wanted.name} is not a scalar`);
    } else if (isEnumType(wanted)) {
      if (!isEnumType(actual)) problems.push(`${wanted.name} is not an enum`);
      else {
        const values = new Set(actual.getValues().map((v) => v.name));
        for (const value of wanted.getValues()) if (!values.has(value.name)) problems.push(`${wanted.name}.${value.name} is missing`);
      }
    } else if (isUnionType(wanted)) {
      if (!isUnionType(actual)) problems.push(`${wanted.name} is not a union`);
      else {
        const members = new Set(actual.getTypes().map((t) => t.name));
        for (const member of wanted.getTypes()) if (!members.has(member.name)) problems.push(`${wanted.name} lacks member ${member.name}`);
      }
    } else if (isInputObjectType(wanted)) {
      if (!isInputObjectType(actual)) {
        problems.push(`${wanted.name} is not an input type`);
        continue;
      }
      const fields = actual.getFields();
      for (const field of Object.values(wanted.getFields())) {
        const served = fields[field.name];
        if (!served) problems.push(`${wanted.name}.${field.name} is missing`);
        else if (!sameInput(field, served)) problems.push(`${wanted.name}.${field.name} is ${describeInput(served)}, contract says ${describeInput(field)}`);
      }
      for (const field of Object.values(fields)) {
        if (!wanted.getFields()[field.name] && !optional(field)) problems.push(`${wanted.name}.${field.name} is an extra required input field`);
      }
    } else if (isObjectType(wanted) || isInterfaceType(wanted)) {
      if (!isObjectType(actual) && !isInterfaceType(actual)) {
        problems.push(`${wanted.name} is not an object type`);
        continue;
      }
      const fields = actual.getFields();
      for (const field of Object.values(wanted.getFields())) {
        const served = fields[field.name];
        const where = `${wanted.name}.${field.name}`;
        if (!served) {
          problems.push(`${where} is missing`);
          continue;
        }
        if (!outputHonours(field.type, served.type)) problems.push(`${where} is ${String(served.type)}, contract says ${String(field.type)}`);
        for (const arg of field.args) {
          const servedArg = served.args.find((a) => a.name === arg.name);
          if (!servedArg) problems.push(`${where}(${arg.name}) is missing`);
          else if (!sameInput(arg, servedArg)) problems.push(`${where}(${arg.name}) is ${describeInput(servedArg)}, contract says ${describeInput(arg)}`);
        }
        for (const arg of served.args) {
          if (!field.args.some((a) => a.name === arg.name) && !optional(arg)) problems.push(`${where}(${arg.name}) is an extra required argument`);
        }
      }
    }
  }
  return problems;
}

describe("the public API contract", () => {
  const contract = buildSchema(readFileSync(CONTRACT_URL, "utf8"));
  const served = makeExecutableSchema({ typeDefs: loadTypeDefs() });

  it("is honoured by the schema the server serves", () => {
    expect(contractViolations(contract, served)).toEqual([]);
  });

  it("webhooks.graphql is honoured by the schema the server serves too", () => {
    const webhooks = buildSchema(`${readFileSync(CONTRACT_URL, "utf8")}\n${readFileSync(WEBHOOKS_URL, "utf8")}`);
    expect(webhooks.getType("Webhook")).toBeDefined();
    expect(contractViolations(webhooks, served)).toEqual([]);
  });

  it("is checked for real: dropped fields, weakened types and changed arguments are caught", () => {
    const broken = buildSchema(
      readFileSync(CONTRACT_URL, "utf8")
        .replace("  slug: String!\n", "  slug: String\n")
        .replace("  completedAt: DateTime\n", "")
        .replace("lists(first: Int = 20, after: String)", "lists(first: Int = 10, after: String)")
        .replace("  ADMIN\n", ""),
    );
    expect(contractViolations(contract, broken)).toEqual(
      expect.arrayContaining([
        "SpaceRole.ADMIN is missing",
        "Space.slug is String, contract says String!",
        "Todo.completedAt is missing",
        "Space.lists(first) is Int = 10, contract says Int = 20",
      ]),
    );
  });

  describe("sessions.graphql", () => {
    const sessions = extended(readFileSync(SESSIONS_URL, "utf8"));

    it("is honoured by the schema the server serves", () => {
      expect(contractViolations(sessions, served)).toEqual([]);
    });

    it("is checked for real: what it adds is required, not only what contract.graphql says", () => {
      // The contract alone, served: everything sessions.graphql adds is missing.
      const withoutSessions = buildSchema(readFileSync(CONTRACT_URL, "utf8"));
      expect(contractViolations(sessions, withoutSessions)).toEqual(
        expect.arrayContaining([
          "type Session is missing",
          "AuthPayload.refreshToken is missing",
          "AuthPayload.tokenExpiresAt is missing",
          "Query.sessions is missing",
          "Mutation.refreshSession is missing",
          "Mutation.changePassword is missing",
        ]),
      );
      const weakened = extended(
        readFileSync(SESSIONS_URL, "utf8")
          .replace("  current: Boolean!\n", "  current: Boolean\n")
          .replace("endSession(id: ID!): ID!", "endSession(id: String!): ID!"),
      );
      expect(contractViolations(sessions, weakened)).toEqual(
        expect.arrayContaining(["Session.current is Boolean, contract says Boolean!", "Mutation.endSession(id) is String!, contract says ID!"]),
      );
    });
  });

  // docs/api is this repository's copy of the product's API documents; where
  // the originals sit beside the checkout (as in CI), the copy must not drift.
  it.each(["contract.graphql", "sessions.graphql", "webhooks.graphql", "ACCESS.md", "ERRORS.md", "WEBHOOKS.md"])("docs/api/%s matches the product's original, where present", (file) => {
    const upstream = new URL(`../../../shared/api/${file}`, import.meta.url);
    if (!existsSync(upstream)) return;
    expect(readFileSync(new URL(`../../docs/api/${file}`, import.meta.url), "utf8")).toBe(readFileSync(upstream, "utf8"));
  });
});
