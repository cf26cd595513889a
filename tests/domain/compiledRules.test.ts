// The compiled read rules (src/policy/compiledRules.ts) against Prisma's own
// filtering, row by row, on random worlds (worlds.ts, with sessions, refresh
// tokens, webhooks and their deliveries added): for every model whose read
// rule compiles, every viewer of the world and every row of the model,
// evaluate() over the row loaded with includeFor() must say exactly what
// prisma.<model>.findMany({ where: rule(viewer) }) says, and so must
// allowedAmong(), which decides all candidates at once. The rules are
// compiled by calling them with a sentinel viewer, which is only sound for
// rules that pass viewer.id through without branching on it: this test is
// what notices one that does not.
//
// COMPILED_RULES_FUZZ_WORLDS (default 150) sets the number of worlds,
// COMPILED_RULES_FUZZ_SEED the seed; a mismatch names the seed, world, model,
// row and viewer so it can be replayed.
import { afterAll, describe, expect, it } from "vitest";
import type { RawPrismaClient } from "../../src/db/database.js";
import {
  compileReadRule,
  compileWhere,
  allowedAmong,
  evaluate,
  includeFor,
  sentinelViewer,
  UncompilableRule,
  type RuleExpr,
} from "../../src/policy/compiledRules.js";
import { rules, type ModelName } from "../../src/policy/rules.js";
import { insertWorlds, serverPerFile } from "./support.js";
import { chance, generateWorld, int, mulberry32, pick, randomId, type GeneratedWorld } from "./worlds.js";

const WORLDS = Number(process.env.COMPILED_RULES_FUZZ_WORLDS ?? 150);
const SEED = Number(process.env.COMPILED_RULES_FUZZ_SEED ?? 0xc0de2026);
const BATCH = 50;

let prisma: RawPrismaClient;
serverPerFile((_server, raw) => {
  prisma = raw;
});

const MODELS: readonly ModelName[] = ["user", "space", "spaceMember", "list", "todo", "session", "refreshToken", "webhook", "webhookDelivery"];
// Today's rules: user's cannot compile (its to-many tests, memberships and
// the lists and todos a viewer may read, are not keyed by the viewer), every
// other one can. A rule that stops compiling makes realtime delivery fall
// back to one statement per subscriber; this list is where that is noticed.
const EXPECTED_TO_COMPILE: readonly ModelName[] = ["space", "spaceMember", "list", "todo", "session", "refreshToken", "webhook", "webhookDelivery"];

/** The primary key of each model: every one is `id` but the refresh token's. */
const keyOf = (model: ModelName) => (model === "refreshToken" ? "hash" : "id");

type Row = Record<string, unknown>;
interface RowReader {
  findMany(args: { where: object; include?: object; select?: object }): Promise<Row[]>;
}
// Prisma's delegates differ per model in their argument types; each model
// here only ever gets its own rule's filter and its own include.
const delegate = (model: ModelName) => prisma[model] as unknown as RowReader;

// ---------------------------------------------------------------- generation

interface SessionRow {
  id: string;
  userId: string;
  expiresAt: Date;
}
interface RefreshTokenRow {
  hash: string;
  sessionId: string;
}
interface WebhookRow {
  id: string;
  spaceId: string;
  createdById: string;
  url: string;
  secret: string;
}
interface DeliveryRow {
  id: string;
  webhookId: string;
  eventId: bigint;
  eventAt: Date;
}

/** A world with the rows of the models worlds.ts does not make. */
interface FullWorld extends GeneratedWorld {
  sessions: SessionRow[];
  refreshTokens: RefreshTokenRow[];
  webhooks: WebhookRow[];
  deliveries: DeliveryRow[];
  /** A viewer id that no user of any world has: someone who belongs nowhere. */
  stranger: string;
}

let eventIds = 0n;
function generateFullWorld(index: number): FullWorld {
  const world = generateWorld(SEED, index);
  // A stream of its own, so the rows worlds.ts makes are those of its seed.
  const rng = mulberry32(world.seed ^ 0x9e3779b9);
  const at = new Date(Date.UTC(2026, 0, 1) + index * 60_000);
  const sessions: SessionRow[] = [];
  const refreshTokens: RefreshTokenRow[] = [];
  for (const user of world.users) {
    for (let s = int(rng, 0, 2); s > 0; s--) {
      const session = { id: randomId(rng, "x"), userId: user.id, expiresAt: new Date(at.getTime() + 3_600_000) };
      sessions.push(session);
      for (let r = int(rng, 0, 2); r > 0; r--) refreshTokens.push({ hash: randomId(rng, "h"), sessionId: session.id });
    }
  }
  const webhooks: WebhookRow[] = [];
  const deliveries: DeliveryRow[] = [];
  for (const space of world.spaces) {
    const members = world.members.filter((m) => m.spaceId === space.id);
    for (let w = int(rng, 0, 2); w > 0; w--) {
      // Mostly made by an admin; sometimes by someone who has been demoted or has left since.
      const admins = members.filter((m) => m.role === "ADMIN");
      const createdById = admins.length > 0 && chance(rng, 0.7) ? pick(rng, admins).userId : pick(rng, world.users).id;
      const webhook = { id: randomId(rng, "w"), spaceId: space.id, createdById, url: "https://example.com/hook", secret: "whsec_test" };
      webhooks.push(webhook);
      for (let d = int(rng, 0, 3); d > 0; d--) deliveries.push({ id: randomId(rng, "d"), webhookId: webhook.id, eventId: ++eventIds, eventAt: at });
    }
  }
  return { ...world, sessions, refreshTokens, webhooks, deliveries, stranger: randomId(rng, "u") };
}

async function insertFullWorlds(worlds: FullWorld[]): Promise<void> {
  await insertWorlds(prisma, worlds);
  await prisma.session.createMany({ data: worlds.flatMap((w) => w.sessions) });
  await prisma.refreshToken.createMany({ data: worlds.flatMap((w) => w.refreshTokens) });
  await prisma.webhook.createMany({ data: worlds.flatMap((w) => w.webhooks) });
  await prisma.webhookDelivery.createMany({ data: worlds.flatMap((w) => w.deliveries) });
}

function rowIdsOf(world: FullWorld, model: ModelName): string[] {
  switch (model) {
    case "user":
      return world.users.map((row) => row.id);
    case "space":
      return world.spaces.map((row) => row.id);
    case "spaceMember":
      return world.members.map((row) => row.id);
    case "list":
      return world.lists.map((row) => row.id);
    case "todo":
      return world.todos.map((row) => row.id);
    case "session":
      return world.sessions.map((row) => row.id);
    case "refreshToken":
      return world.refreshTokens.map((row) => row.hash);
    case "webhook":
      return world.webhooks.map((row) => row.id);
    case "webhookDelivery":
      return world.deliveries.map((row) => row.id);
  }
}

// ---------------------------------------------------------------------- run

const compiled = new Map<ModelName, RuleExpr>();
for (const model of MODELS) {
  try {
    compiled.set(model, compileReadRule(model));
  } catch (error) {
    if (!(error instanceof UncompilableRule)) throw error;
  }
}

/** Per model, how many (viewer, row) pairs each answer covered: both must occur for a check to mean anything. */
const outcomes = new Map<ModelName, { readable: number; unreadable: number }>();
const totals = { worlds: 0, viewers: 0, pairs: 0 };

async function checkWorld(world: FullWorld): Promise<string[]> {
  const rng = mulberry32(world.seed ^ 0x7f4a7c15);
  const viewerIds = [...world.users.map((user) => user.id), world.stranger];
  const everyone = new Set(viewerIds);
  // Rows loaded for some of the viewers only, as realtime delivery loads them for an event's subscribers.
  const some = viewerIds.filter(() => chance(rng, 0.5));
  const someSet = new Set(some);
  const mismatches: string[] = [];
  for (const [model, expr] of compiled) {
    const ids = rowIdsOf(world, model);
    if (ids.length === 0) continue;
    const key = keyOf(model);
    const load = async (candidates: readonly string[]) => {
      const include = includeFor(expr, candidates);
      const rows = await delegate(model).findMany({ where: { [key]: { in: ids } }, ...(include ? { include } : {}) });
      expect(rows).toHaveLength(ids.length);
      return rows;
    };
    const [forEveryone, forSome] = [await load(viewerIds), await load(some)];
    const someById = new Map(forSome.map((row) => [row[key], row]));
    const tally = (outcomes.get(model) ?? outcomes.set(model, { readable: 0, unreadable: 0 }).get(model))!;
    // Worked out for all candidates at once, as delivery does: the same answers as evaluate(), viewer by viewer.
    const allowedForEveryone = new Map(forEveryone.map((row) => [row[key], allowedAmong(expr, row, everyone)]));
    const allowedForSome = new Map(forSome.map((row) => [row[key], allowedAmong(expr, row, someSet)]));
    for (const [id, allowed] of allowedForSome) {
      const outsiders = [...allowed].filter((viewerId) => !someSet.has(viewerId));
      if (outsiders.length > 0) mismatches.push(`seed ${world.seed} world ${world.index} ${model} ${String(id)}: allowedAmong allows ${outsiders.join(", ")}, who were not candidates`);
    }
    for (const viewerId of viewerIds) {
      const readable = await delegate(model).findMany({
        where: { AND: [rules[model].read({ id: viewerId }), { [key]: { in: ids } }] },
        select: { [key]: true },
      });
      const prismaSays = new Set(readable.map((row) => row[key]));
      for (const row of forEveryone) {
        const expected = prismaSays.has(row[key]);
        const where = `seed ${world.seed} world ${world.index} ${model} ${String(row[key])} viewer ${viewerId}`;
        const actual = evaluate(expr, row, viewerId, everyone);
        if (actual !== expected) mismatches.push(`${where}: evaluate says ${actual}, Prisma says ${expected}`);
        const amongAll = allowedForEveryone.get(row[key])!.has(viewerId);
        if (amongAll !== expected) mismatches.push(`${where}: allowedAmong says ${amongAll}, Prisma says ${expected}`);
        if (someSet.has(viewerId)) {
          const partial = evaluate(expr, someById.get(row[key])!, viewerId, someSet);
          if (partial !== expected) mismatches.push(`${where} (row loaded for ${some.length} viewers): evaluate says ${partial}, Prisma says ${expected}`);
          const amongSome = allowedForSome.get(row[key])!.has(viewerId);
          if (amongSome !== expected) mismatches.push(`${where} (row loaded for ${some.length} viewers): allowedAmong says ${amongSome}, Prisma says ${expected}`);
        }
        tally[expected ? "readable" : "unreadable"] += 1;
        totals.pairs += 1;
      }
    }
  }
  totals.worlds += 1;
  totals.viewers += viewerIds.length;
  return mismatches;
}

const batches = Array.from({ length: Math.ceil(WORLDS / BATCH) }, (_, b) => [b * BATCH, Math.min(WORLDS, (b + 1) * BATCH)] as const);

describe(`compiled read rules against Prisma's filtering (${WORLDS} worlds, seed ${SEED})`, () => {
  it("compiles exactly the read rules it is expected to", () => {
    expect([...compiled.keys()]).toEqual(EXPECTED_TO_COMPILE);
    expect(() => compileReadRule("user")).toThrow(UncompilableRule);
  });

  it.each(batches)("worlds %i to %i: the expression evaluator agrees with Prisma's own filtering, row by row", async (from, to) => {
    const worlds = Array.from({ length: to - from }, (_, i) => generateFullWorld(from + i));
    await insertFullWorlds(worlds);
    const mismatches: string[] = [];
    for (const world of worlds) mismatches.push(...(await checkWorld(world)));
    expect(mismatches.slice(0, 20), `${mismatches.length} mismatches, the first 20 shown`).toEqual([]);
  }, 300_000);

  it("saw readable and unreadable rows of every compiled model (refresh tokens: never readable)", () => {
    expect(totals.worlds, "the worlds above must all have run").toBe(WORLDS);
    for (const model of compiled.keys()) {
      const tally = outcomes.get(model) ?? { readable: 0, unreadable: 0 };
      expect(tally.unreadable, `${model}: unreadable pairs`).toBeGreaterThan(0);
      if (model === "refreshToken") expect(tally.readable, `${model}: readable pairs`).toBe(0);
      else expect(tally.readable, `${model}: readable pairs`).toBeGreaterThan(0);
    }
  });

  it("generates the cases that matter: former members, ADMIN and USER, private lists of someone who left", () => {
    const seen = new Set<string>();
    for (let index = 0; index < Math.min(WORLDS, 200); index++) {
      const world = generateFullWorld(index);
      const memberOf = (spaceId: string, userId: string) => world.members.find((m) => m.spaceId === spaceId && m.userId === userId);
      for (const list of world.lists) {
        const ownerIn = memberOf(list.spaceId, list.ownerId) !== undefined;
        seen.add(`list private=${list.private} owner member=${ownerIn}`);
      }
      for (const webhook of world.webhooks) {
        for (const user of world.users) {
          const role = memberOf(webhook.spaceId, user.id)?.role ?? "none";
          seen.add(`webhook, viewer role ${role}`);
        }
        if (memberOf(webhook.spaceId, webhook.createdById)?.role !== "ADMIN") seen.add("webhook whose creator is no admin now");
      }
      if (world.deliveries.length > 0) seen.add("webhook delivery");
      if (world.refreshTokens.length > 0) seen.add("refresh token");
      for (const todo of world.todos) {
        const list = world.lists.find((l) => l.id === todo.listId)!;
        if (!memberOf(list.spaceId, todo.ownerId)) seen.add("todo owned by a non-member");
      }
    }
    for (const label of [
      "list private=true owner member=false",
      "list private=true owner member=true",
      "list private=false owner member=false",
      "list private=false owner member=true",
      "webhook, viewer role ADMIN",
      "webhook, viewer role USER",
      "webhook, viewer role none",
      "webhook whose creator is no admin now",
      "webhook delivery",
      "refresh token",
      "todo owned by a non-member",
    ]) {
      expect(seen).toContain(label);
    }
  });

  afterAll(() => {
    console.log(`compiled rules: ${totals.worlds} worlds, ${totals.viewers} viewers, ${totals.pairs} (viewer, row) pairs, 0 mismatches expected`);
  });
});

describe("what the compiler refuses", () => {
  const viewer = sentinelViewer.id;
  it.each([
    ["NOT", "list", { NOT: { private: true } }],
    ["NOT inside OR", "list", { OR: [{ ownerId: viewer }, { NOT: { private: true } }] }],
    ["an unknown operator (contains)", "list", { title: { contains: "secret" } }],
    ["an unknown operator (gt)", "todo", { createdAt: { gt: new Date(0) } }],
    ["an unknown operator (gt) on a string", "list", { title: { gt: "a" } }],
    ["every", "space", { members: { every: { userId: viewer } } }],
    ["a to-many test not keyed by the viewer", "space", { members: { some: { role: "ADMIN" } } }],
    ["a to-many test keyed by the viewer only inside an OR", "space", { members: { some: { OR: [{ userId: viewer }, { role: "ADMIN" }] } } }],
    ["the viewer's id inside `in`", "list", { ownerId: { in: ["someone", viewer] } }],
    ["the viewer's id inside another value", "list", { title: `List of ${viewer}` }],
    ["isNot", "list", { space: { isNot: { name: "x" } } }],
  ] as const)("%s", (_name, model, where) => {
    expect(() => compileWhere(model, where)).toThrow(UncompilableRule);
  });

  it("and compiles what it knows: equality with the viewer or a literal, `in` of literals, to-one, keyed some and none", () => {
    expect(compileWhere("list", { ownerId: viewer, private: { equals: false }, id: { in: ["a", "b"] } })).toEqual({
      op: "and",
      items: [
        { op: "equals", field: "ownerId", operand: { viewer: true } },
        { op: "equals", field: "private", operand: { literal: false } },
        { op: "in", field: "id", values: ["a", "b"] },
      ],
    });
    expect(compileWhere("list", { space: { is: { members: { none: { userId: viewer } } } } })).toMatchObject({
      op: "one",
      relation: "space",
      item: { op: "some", relation: "members", keyField: "userId", negated: true },
    });
  });

  it("allowedAmong agrees with evaluate on filters the rules do not use yet: a keyed test ANDed with an owner, two keyed tests, `none`", () => {
    const member = (userId: string, role: string) => ({ id: `m-${userId}-${role}`, userId, role, spaceId: "s1" });
    const space = { id: "s1", name: "x", members: [member("u1", "ADMIN"), member("u2", "USER"), member("u3", "ADMIN"), member("u5", "USER")] };
    const candidates = new Set(["u1", "u2", "u3", "u4", "u5"]);
    const filters: Record<string, unknown>[] = [
      { AND: [{ space: { members: { some: { userId: viewer } } } }, { ownerId: viewer }] },
      { AND: [{ ownerId: viewer }, { space: { members: { some: { userId: viewer, role: "ADMIN" } } } }] },
      { AND: [{ space: { members: { some: { userId: viewer } } } }, { space: { members: { some: { userId: viewer, role: "ADMIN" } } } }] },
      { OR: [{ ownerId: viewer }, { space: { members: { some: { userId: viewer, role: "ADMIN" } } } }] },
      { space: { members: { none: { userId: viewer, role: "ADMIN" } } } },
      { AND: [{ private: true }, { space: { members: { some: { userId: viewer } } } }] },
    ];
    for (const ownerId of ["u1", "u2", "u4"]) {
      for (const isPrivate of [false, true]) {
        const row = { id: "l1", ownerId, private: isPrivate, spaceId: "s1", space };
        for (const where of filters) {
          const expr = compileWhere("list", where);
          const expected = [...candidates].filter((viewerId) => evaluate(expr, row, viewerId, candidates));
          expect([...allowedAmong(expr, row, candidates)].sort(), JSON.stringify({ where, ownerId, isPrivate })).toEqual(expected);
        }
      }
    }
  });

  it("allowedAmong hands back the same set from one event to the next when the list's owner is a member (no copy per event)", () => {
    const member = (userId: string) => ({ id: `m-${userId}`, userId, role: "USER", spaceId: "s1" });
    // Kept between events as one array (src/realtime/relationCache.ts).
    const members = ["u1", "u2", "u3"].map(member);
    const candidates = new Set(["u1", "u2", "u3", "u4"]);
    const expr = compileReadRule("list");
    // Each event loads the list afresh; the memberships are the kept array.
    const listLoaded = (ownerId: string) => ({ id: "l1", ownerId, private: false, spaceId: "s1", space: { id: "s1", members } });
    const first = allowedAmong(expr, listLoaded("u1"), candidates);
    const second = allowedAmong(expr, listLoaded("u1"), candidates);
    expect([...first].sort()).toEqual(["u1", "u2", "u3"]);
    expect(second).toBe(first);
    // An owner who is not a member (left the space) reads their own list: joined, and right.
    const withFormerMember = allowedAmong(expr, listLoaded("u4"), candidates);
    expect([...withFormerMember].sort()).toEqual(["u1", "u2", "u3", "u4"]);
    // Private: the owner alone, member or not.
    expect([...allowedAmong(expr, { ...listLoaded("u2"), private: true }, candidates)]).toEqual(["u2"]);
    expect([...allowedAmong(expr, { ...listLoaded("u4"), private: true }, candidates)]).toEqual(["u4"]);
  });

  it("allowedAmong hands back the members' set as it is when the list's owner is not among the candidates (a writer not subscribed)", () => {
    const member = (userId: string) => ({ id: `m-${userId}`, userId, role: "USER", spaceId: "s1" });
    // Rows are loaded for the candidates only: the owner's membership is not among them.
    const members = ["u1", "u2", "u3"].map(member);
    // u5 is subscribed but not a member: the answer is not the candidates' set itself.
    const candidates = new Set(["u1", "u2", "u3", "u5"]);
    const expr = compileReadRule("list");
    const listLoaded = (isPrivate: boolean) => ({ id: "l1", ownerId: "writer", private: isPrivate, spaceId: "s1", space: { id: "s1", members } });
    const first = allowedAmong(expr, listLoaded(false), candidates);
    expect([...first].sort()).toEqual(["u1", "u2", "u3"]);
    expect(allowedAmong(expr, listLoaded(false), candidates)).toBe(first);
    // Private, the owner is the only reader, and not a candidate: nobody here.
    expect([...allowedAmong(expr, listLoaded(true), candidates)]).toEqual([]);
    // Once the owner is a candidate, they are one of the readers again.
    expect([...allowedAmong(expr, listLoaded(true), new Set([...candidates, "writer"]))]).toEqual(["writer"]);
    expect([...allowedAmong(expr, listLoaded(false), new Set([...candidates, "writer"]))].sort()).toEqual(["u1", "u2", "u3", "writer"]);
  });

  it("evaluate refuses a viewer the row was not loaded for", () => {
    const expr = compileReadRule("list");
    const row = { id: "l1", ownerId: "u1", private: false, spaceId: "s1", space: { id: "s1", members: [] } };
    expect(evaluate(expr, row, "u1", new Set(["u1"]))).toBe(true);
    expect(() => evaluate(expr, row, "u2", new Set(["u1"]))).toThrow(/not among the candidates/);
  });
});
