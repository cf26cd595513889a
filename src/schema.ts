// The executable schema: SDL from schema/*.graphql (the source of truth) and
// the resolvers of every module, merged.
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { GraphQLScalarType, type DocumentNode } from "graphql";
import { gql } from "graphql-tag";
import type { Resolvers } from "./generated/graphql.js";
import { sessionResolvers } from "./modules/auth/resolvers.js";
import { DateTime } from "./modules/common/scalars.js";
import { listResolvers } from "./modules/list/resolvers.js";
import { memberResolvers } from "./modules/member/resolvers.js";
import { spaceResolvers } from "./modules/space/resolvers.js";
import { todoResolvers } from "./modules/todo/resolvers.js";
import { userResolvers } from "./modules/user/resolvers.js";
import { webhookResolvers } from "./modules/webhook/resolvers.js";
import { connectionResolvers } from "./pagination/connection.js";
import { realtimeResolvers } from "./realtime/resolvers.js";

export const SCHEMA_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../schema");

export function loadTypeDefs(directory = SCHEMA_DIR): DocumentNode[] {
  return readdirSync(directory)
    .filter((file) => file.endsWith(".graphql"))
    .sort()
    .map((file) => gql(readFileSync(path.join(directory, file), "utf8")));
}

type ResolverMap = Record<string, unknown>;

function mergeResolvers(...maps: Resolvers[]): Resolvers {
  const merged: Record<string, ResolverMap> = {};
  for (const map of maps) {
    for (const [typeName, fields] of Object.entries(map)) {
      if (fields instanceof GraphQLScalarType) {
        merged[typeName] = fields as unknown as ResolverMap;
        continue;
      }
      merged[typeName] = { ...(merged[typeName] ?? {}), ...(fields as ResolverMap) };
    }
  }
  return merged as Resolvers;
}

export const resolvers: Resolvers = mergeResolvers(
  { DateTime },
  userResolvers,
  sessionResolvers,
  spaceResolvers,
  memberResolvers,
  listResolvers,
  todoResolvers,
  {
    SpaceConnection: connectionResolvers,
    ListConnection: connectionResolvers,
    TodoConnection: connectionResolvers,
  },
  realtimeResolvers,
  webhookResolvers,
);
