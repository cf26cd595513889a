// Shared by the domain tests: worlds written straight through the raw Prisma
// client (fast, and with ids and timestamps the test chooses), bearer tokens
// minted the way the server issues them, and snapshots that prove a denied or
// invalid operation changed nothing.
import { SignJWT } from "jose";
import { afterAll, beforeAll, expect } from "vitest";
import type { RawPrismaClient } from "../../src/db/database.js";
import { hashPassword } from "../../src/modules/auth/passwords.js";
import { startTestServer, TEST_JWT_SECRET, type GraphQLResult, type TestServer, type TestServerOptions } from "../helpers/server.js";

const ISSUER = "todo-graphql-server";
const secret = new TextEncoder().encode(TEST_JWT_SECRET);

/**
 * One real server (and database) for the whole test file: started before its
 * tests, closed after them. `ready` hands it and its raw client to the file.
 */
export function serverPerFile(ready: (server: TestServer, prisma: RawPrismaClient) => void, options?: TestServerOptions): void {
  let started: TestServer | undefined;
  beforeAll(async () => {
    started = await startTestServer(options);
    ready(started, started.database.prisma);
  });
  afterAll(() => started?.close());
}

/**
 * A token the server accepts for `userId`, without a log-in round trip: a
 * session row for it, as logIn would write, and a token naming that session.
 */
export async function mintToken(prisma: RawPrismaClient, userId: string): Promise<string> {
  const session = await prisma.session.create({
    data: { userId, expiresAt: new Date(Date.now() + 3_600_000) },
    select: { id: true },
  });
  return new SignJWT({ sid: session.id })
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(userId)
    .setIssuer(ISSUER)
    .setIssuedAt()
    .setExpirationTime("1h")
    .sign(secret);
}

// One real hash for every inserted user: hashing is deliberately slow.
let passwordHash: Promise<string> | undefined;
const sharedPasswordHash = () => (passwordHash ??= hashPassword("correct-horse-1"));

let sequence = 0;
/** A fresh id, unique in this process and shaped like the ids the API accepts. */
export function newId(prefix: string): string {
  sequence += 1;
  return `${prefix}${process.pid.toString(36)}x${sequence.toString(36).padStart(5, "0")}`;
}

export type Role = "USER" | "ADMIN";

export interface UserRow {
  id: string;
  email: string;
  name: string | null;
  createdAt: Date;
}
export interface SpaceRow {
  id: string;
  name: string;
  slug: string;
  ownerId: string | null;
  createdAt: Date;
}
export interface MemberRow {
  id: string;
  spaceId: string;
  userId: string;
  role: Role;
  createdAt: Date;
}
export interface ListRow {
  id: string;
  spaceId: string;
  ownerId: string;
  title: string;
  private: boolean;
  createdAt: Date;
}
export interface TodoRow {
  id: string;
  listId: string;
  ownerId: string;
  title: string;
  completedAt: Date | null;
  createdAt: Date;
}

export interface World {
  users: UserRow[];
  spaces: SpaceRow[];
  members: MemberRow[];
  lists: ListRow[];
  todos: TodoRow[];
}

export const emptyWorld = (): World => ({ users: [], spaces: [], members: [], lists: [], todos: [] });

/** Writes worlds with one statement per table (chunked for very large runs). */
export async function insertWorlds(prisma: RawPrismaClient, worlds: World[]): Promise<void> {
  const all = <K extends keyof World>(key: K): World[K] => worlds.flatMap((world): World[K][number][] => world[key]) as World[K];
  const hash = await sharedPasswordHash();
  const users = all("users").map((user) => ({ ...user, passwordHash: hash }));
  for (const chunk of chunks(users)) await prisma.user.createMany({ data: chunk });
  for (const chunk of chunks(all("spaces"))) await prisma.space.createMany({ data: chunk });
  for (const chunk of chunks(all("members"))) await prisma.spaceMember.createMany({ data: chunk });
  for (const chunk of chunks(all("lists"))) await prisma.list.createMany({ data: chunk });
  for (const chunk of chunks(all("todos"))) await prisma.todo.createMany({ data: chunk });
}

// Keeps each statement well under PostgreSQL's 65535 bind parameters.
function chunks<T>(rows: T[], size = 2000): T[][] {
  const result: T[][] = [];
  for (let start = 0; start < rows.length; start += size) result.push(rows.slice(start, start + size));
  return result;
}

/** Small builders for hand-written worlds; each returns the row it added. */
export function worldBuilder(world: World = emptyWorld()) {
  let clock = Date.UTC(2026, 0, 1) + sequence * 1000;
  const tick = () => new Date((clock += 1000));
  const member = (space: SpaceRow, user: UserRow, role: Role): MemberRow => {
    const row = { id: newId("m"), spaceId: space.id, userId: user.id, role, createdAt: tick() };
    world.members.push(row);
    return row;
  };
  return {
    world,
    member,
    user(name: string): UserRow {
      const id = newId("u");
      const row = { id, email: `${id}@example.com`, name, createdAt: tick() };
      world.users.push(row);
      return row;
    },
    /** A space owned by `owner`, its first member (ADMIN, as createSpace makes it, unless told otherwise). */
    space(owner: UserRow, members: [UserRow, Role][] = [], ownerRole: Role = "ADMIN"): SpaceRow {
      const id = newId("s");
      const row = { id, name: `Space ${id}`, slug: id.slice(-16), ownerId: owner.id, createdAt: tick() };
      world.spaces.push(row);
      member(row, owner, ownerRole);
      for (const [user, role] of members) member(row, user, role);
      return row;
    },
    list(space: SpaceRow, owner: UserRow, isPrivate = false): ListRow {
      const id = newId("l");
      const row = { id, spaceId: space.id, ownerId: owner.id, title: `List ${id}`, private: isPrivate, createdAt: tick() };
      world.lists.push(row);
      return row;
    },
    todo(list: ListRow, owner: UserRow, completed = false): TodoRow {
      const id = newId("t");
      const createdAt = tick();
      const row = { id, listId: list.id, ownerId: owner.id, title: `Todo ${id}`, completedAt: completed ? createdAt : null, createdAt };
      world.todos.push(row);
      return row;
    },
  };
}

/**
 * Every row a test could have touched, for before/after comparisons. With
 * `userIds`, only rows of those users and of the spaces they belong to or own
 * (enough to see any write a world's users could make); without, everything.
 * The newest event id shows whether an event was appended.
 */
export async function snapshot(prisma: RawPrismaClient, userIds?: string[]) {
  const scoped = <Where>(where: Where) => (userIds ? where : {});
  const theirs = userIds ? { in: userIds } : undefined;
  const inTheirSpaces = { members: { some: { userId: theirs } } };
  const orderById = { orderBy: { id: "asc" as const } };
  const [users, spaces, members, lists, todos, events] = await Promise.all([
    prisma.user.findMany({ where: scoped({ id: theirs }), ...orderById }),
    prisma.space.findMany({ where: scoped({ OR: [{ ownerId: theirs }, inTheirSpaces] }), ...orderById }),
    prisma.spaceMember.findMany({ where: scoped({ OR: [{ userId: theirs }, { space: inTheirSpaces }] }), ...orderById }),
    prisma.list.findMany({ where: scoped({ OR: [{ ownerId: theirs }, { space: inTheirSpaces }] }), ...orderById }),
    prisma.todo.findMany({
      where: scoped({ OR: [{ ownerId: theirs }, { list: { OR: [{ ownerId: theirs }, { space: inTheirSpaces }] } }] }),
      ...orderById,
    }),
    prisma.event.aggregate({ _max: { id: true } }),
  ]);
  return { users, spaces, members, lists, todos, lastEventId: events._max.id };
}

/**
 * Runs an operation that must fail, and asserts it failed with `code` (and
 * `field`, when given) and that the database is exactly as it was before.
 */
export async function expectRejected(
  prisma: RawPrismaClient,
  operation: () => Promise<GraphQLResult<unknown>>,
  code: string,
  options: { field?: string; userIds?: string[] } = {},
): Promise<GraphQLResult<unknown>> {
  const before = await snapshot(prisma, options.userIds);
  const result = await operation();
  expect(result.errors?.map((error) => error.extensions?.code), JSON.stringify(result.errors)).toEqual([code]);
  if (options.field !== undefined) expect(result.errors?.[0]?.extensions?.field).toBe(options.field);
  // A failed mutation (or root field) yields no data for it.
  for (const value of Object.values(result.data ?? {})) expect(value).toBeNull();
  expect(await snapshot(prisma, options.userIds)).toEqual(before);
  return result;
}

/** The data of a result that must have succeeded. */
export function dataOf<Data>(result: GraphQLResult<Data>): Data {
  expect(result.errors, JSON.stringify(result.errors)).toBeUndefined();
  expect(result.data).toBeTruthy();
  return result.data as Data;
}
