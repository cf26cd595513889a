// The memberships' version that realtime delivery trusts its kept
// memberships by (src/realtime/relationCache.ts): the triggers of migration
// 20261204120000_space_members_version_per_statement must move a space's
// version with every statement that changes its memberships, whatever wrote
// it (cascades and hand-written SQL included), once per statement rather than
// once per row, and never for a statement that changed none of them.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RawPrismaClient } from "../../src/db/database.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

let server: TestServer;
let prisma: RawPrismaClient;
let sequence = 0;

beforeAll(async () => {
  server = await startTestServer();
  prisma = server.database.prisma;
});

afterAll(async () => {
  await server.close();
});

async function versionOf(spaceId: string): Promise<number> {
  const [row] = await prisma.$queryRawUnsafe<{ version: bigint }[]>(`SELECT "membersVersion" AS version FROM "Space" WHERE id = $1`, spaceId);
  return Number(row!.version);
}

/** `count` fresh users (their ids returned) and `spaces` fresh spaces owned by the first, without members. */
async function freshWorld(count: number, spaces: number): Promise<{ users: string[]; spaces: string[] }> {
  const prefix = `mv${++sequence}_`;
  await prisma.$executeRawUnsafe(
    `INSERT INTO "User" (id, email, "passwordHash", "updatedAt")
     SELECT $1 || i, $1 || i || '@example.com', 'not-a-hash', now() FROM generate_series(0, $2::int - 1) AS i`,
    prefix,
    count,
  );
  await prisma.$executeRawUnsafe(
    `INSERT INTO "Space" (id, name, slug, "ownerId", "updatedAt")
     SELECT $1 || 's' || i, 'Space', $1 || 's' || i, $1 || '0', now() FROM generate_series(0, $2::int - 1) AS i`,
    prefix,
    spaces,
  );
  return {
    users: Array.from({ length: count }, (_, index) => `${prefix}${index}`),
    spaces: Array.from({ length: spaces }, (_, index) => `${prefix}s${index}`),
  };
}

/** One statement adding each user to the space. */
const addAll = (spaceId: string, users: string[]) =>
  prisma.$executeRawUnsafe(
    `INSERT INTO "SpaceMember" (id, "spaceId", "userId", "updatedAt") SELECT $1 || u, $1, u, now() FROM unnest($2::text[]) AS u`,
    spaceId,
    users,
  );

describe("the memberships' version", () => {
  it("moves once for one statement adding hundreds of members, and once more for one removing them", async () => {
    const world = await freshWorld(300, 1);
    const space = world.spaces[0]!;
    const start = await versionOf(space);
    expect(await addAll(space, world.users)).toBe(300);
    expect(await versionOf(space)).toBe(start + 1);
    expect(await prisma.$executeRawUnsafe(`DELETE FROM "SpaceMember" WHERE "spaceId" = $1`, space)).toBe(300);
    expect(await versionOf(space)).toBe(start + 2);
  });

  it("moves each space a statement touches, and no other", async () => {
    const world = await freshWorld(4, 3);
    const [a, b, untouched] = world.spaces as [string, string, string];
    await addAll(untouched, world.users);
    const before = { a: await versionOf(a), b: await versionOf(b), untouched: await versionOf(untouched) };
    await prisma.$executeRawUnsafe(
      `INSERT INTO "SpaceMember" (id, "spaceId", "userId", "updatedAt")
       SELECT s || u, s, u, now() FROM unnest($1::text[]) AS s, unnest($2::text[]) AS u`,
      [a, b],
      world.users,
    );
    expect({ a: await versionOf(a), b: await versionOf(b), untouched: await versionOf(untouched) }).toEqual({
      a: before.a + 1,
      b: before.b + 1,
      untouched: before.untouched,
    });
  });

  it("moves for a role changed, and both spaces' for a membership moved from one to the other", async () => {
    const world = await freshWorld(2, 2);
    const [from, to] = world.spaces as [string, string];
    await addAll(from, world.users);
    const roleBefore = await versionOf(from);
    await prisma.$executeRawUnsafe(`UPDATE "SpaceMember" SET role = 'ADMIN' WHERE "spaceId" = $1`, from);
    expect(await versionOf(from)).toBe(roleBefore + 1);

    const [fromBefore, toBefore] = [await versionOf(from), await versionOf(to)];
    await prisma.$executeRawUnsafe(`UPDATE "SpaceMember" SET "spaceId" = $2 WHERE "spaceId" = $1 AND "userId" = $3`, from, to, world.users[1]);
    expect([await versionOf(from), await versionOf(to)]).toEqual([fromBefore + 1, toBefore + 1]);
  });

  it("moves every space of a user deleted, through the cascade to their memberships", async () => {
    const world = await freshWorld(3, 2);
    const [first, second] = world.spaces as [string, string];
    const leaving = world.users[2]!;
    await addAll(first, world.users);
    await addAll(second, [leaving]);
    const before = [await versionOf(first), await versionOf(second)];
    await prisma.$executeRawUnsafe(`DELETE FROM "User" WHERE id = $1`, leaving);
    expect([await versionOf(first), await versionOf(second)]).toEqual([before[0]! + 1, before[1]! + 1]);
  });

  it("stays for a statement that changes no membership, and for one rolled back", async () => {
    const world = await freshWorld(2, 1);
    const space = world.spaces[0]!;
    await addAll(space, world.users);
    const before = await versionOf(space);
    expect(await prisma.$executeRawUnsafe(`DELETE FROM "SpaceMember" WHERE "spaceId" = $1 AND "userId" = 'nobody'`, space)).toBe(0);
    expect(await prisma.$executeRawUnsafe(`UPDATE "SpaceMember" SET role = 'USER' WHERE "spaceId" = 'no such space'`)).toBe(0);
    expect(await versionOf(space)).toBe(before);

    // A duplicate membership fails the statement: neither its rows nor its bump remain.
    await expect(addAll(space, [world.users[0]!])).rejects.toThrow();
    expect(await versionOf(space)).toBe(before);
    await expect(
      prisma.$transaction(async (tx) => {
        await tx.$executeRawUnsafe(`DELETE FROM "SpaceMember" WHERE "spaceId" = $1`, space);
        throw new Error("rolled back on purpose");
      }),
    ).rejects.toThrow("rolled back on purpose");
    expect(await versionOf(space)).toBe(before);
    const [{ count }] = (await prisma.$queryRawUnsafe<{ count: bigint }[]>(`SELECT count(*) AS count FROM "SpaceMember" WHERE "spaceId" = $1`, space)) as [
      { count: bigint },
    ];
    expect(Number(count)).toBe(2);
  });
});
