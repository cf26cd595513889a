// The batched audience (src/realtime/audience.ts) against the per-viewer
// delivery check it replaces for live events (readableEvent, delivery.ts,
// reading through each viewer's own policy client), on random worlds
// (tests/domain/worlds.ts) changed at random through the raw client: todos
// created, updated and deleted, lists made private or public, created and
// deleted (their todos with them), members removed, list owners leaving,
// users joining, whole spaces deleted. Every change records the events the
// event log would hold for it (modules/list, modules/todo: the list's owner
// and privacy as they were at the change). After each change every event so
// far is decided again, for every user of the world (members, former members,
// users never in the space): the set of receivers, and the row each receives,
// must be the same on both paths, DELETED events and departed members
// included. The batched side keeps memberships between decisions
// (relationCache.ts), so the world's changes must make it read them again:
// its answers are also compared with a cold start's. And deciding an event
// from a cold start must cost as many statements for one viewer as for all
// of them, or for hundreds more.
//
// After each change the check when a subscription starts (subscribeCheck.ts:
// may the viewer read the space or list now?) is compared too, for every
// user and every space and list the world has had: batched for all users at
// once through the realtime's check, and for them all in one decision,
// against each user's own policy client.
//
// AUDIENCE_FUZZ_WORLDS (default 40) sets the number of worlds,
// AUDIENCE_FUZZ_SEED the seed; a mismatch names the seed, world, change,
// event and viewer so it can be replayed.
import { isDeepStrictEqual } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createContextFactory, type ContextFactory, type GraphQLContext } from "../../src/context.js";
import type { RawPrismaClient } from "../../src/db/database.js";
import { compileSubscriptionRules, createBatchedAudience, type BatchedAudience } from "../../src/realtime/audience.js";
import { readableEvent } from "../../src/realtime/delivery.js";
import { createEventCursors } from "../../src/realtime/eventCursor.js";
import type { ChangeEvent, DeliveredEvent } from "../../src/realtime/events.js";
import type { NewEvent } from "../../src/realtime/eventLog.js";
import { listEvent } from "../../src/modules/list/service.js";
import { todoEventOf } from "../../src/modules/todo/service.js";
import { createRealtime, type Realtime } from "../../src/realtime/index.js";
import type { SubscribeTarget } from "../../src/realtime/subscribeCheck.js";
import { startTestServer, TEST_JWT_SECRET, type TestServer } from "../helpers/server.js";
import { insertWorlds, type ListRow, type MemberRow, type Role, type SpaceRow, type TodoRow } from "../domain/support.js";
import { chance, generateWorld, int, mulberry32, pick, randomId, type GeneratedWorld, type Random } from "../domain/worlds.js";

const WORLDS = Number(process.env.AUDIENCE_FUZZ_WORLDS ?? 40);
const SEED = Number(process.env.AUDIENCE_FUZZ_SEED ?? 0xa0d12026);
const BATCH = 20;

let server: TestServer;
let prisma: RawPrismaClient;
let realtime: Realtime;
let createContext: ContextFactory;
let batched: BatchedAudience;
let compiled: ReturnType<typeof compileSubscriptionRules>;

/**
 * A part of the context the delivery check has no business reading: it
 * fails the test, naming what was read, instead of standing in for it.
 */
function notReadByDelivery<T extends object>(name: string): T {
  return new Proxy({} as T, {
    get(_target, property) {
      throw new Error(`readableEvent read context.${name}.${String(property)}`);
    },
  });
}

beforeAll(async () => {
  server = await startTestServer();
  prisma = server.database.prisma;
  // The realtime of a server of its own on the same database: readableEvent
  // asks it whether a list still exists. No Redis: nothing is published here.
  realtime = await createRealtime(
    prisma,
    { ...server.config, redisUrl: undefined },
    server.logger,
    createEventCursors(new TextEncoder().encode(TEST_JWT_SECRET)),
  );
  // As server.ts builds it, without what the delivery check never reads.
  createContext = createContextFactory({
    prisma,
    auth: notReadByDelivery("auth"),
    realtime,
    webhooks: notReadByDelivery("webhooks"),
    policyOptions: () => ({}),
  });
  compiled = compileSubscriptionRules();
  batched = createBatchedAudience(prisma, compiled);
});
afterAll(async () => {
  await realtime?.close();
  await server?.close();
});

// ------------------------------------------------------------------- changes

/** The world as it stands after the changes so far, mirrored in memory to pick the next change from. */
interface State {
  world: GeneratedWorld;
  spaces: Map<string, SpaceRow>;
  members: MemberRow[];
  /** `${spaceId} ${userId}` of every membership there has been. */
  everMember: Set<string>;
  lists: Map<string, ListRow>;
  todos: Map<string, TodoRow>;
}

interface Change {
  description: string;
  events: NewEvent[];
}

// Events are made by the services' own builders (the list's owner and privacy at the change).

const memberOf = (state: State, spaceId: string, userId: string) => state.members.find((m) => m.spaceId === spaceId && m.userId === userId);

/** Whether the membership can go and leave its space an ADMIN, as the API insists. */
const removable = (state: State, member: MemberRow) =>
  member.role !== "ADMIN" || state.members.some((m) => m.spaceId === member.spaceId && m.role === "ADMIN" && m.id !== member.id);

async function removeMembership(state: State, member: MemberRow): Promise<void> {
  await prisma.spaceMember.delete({ where: { id: member.id } });
  state.members = state.members.filter((m) => m.id !== member.id);
}

type ChangeMaker = (state: State, rng: Random, at: Date) => Promise<Change | undefined>;

// Each returns undefined when the world holds nothing it could change.
const changes: [weight: number, make: ChangeMaker][] = [
  [
    3,
    async function updateTodo(state, rng, at) {
      if (state.todos.size === 0) return undefined;
      const todo = pick(rng, [...state.todos.values()]);
      const list = state.lists.get(todo.listId)!;
      const updated = { ...todo, title: `Todo at ${at.getTime()}`, completedAt: todo.completedAt ? null : at };
      await prisma.todo.update({ where: { id: todo.id }, data: { title: updated.title, completedAt: updated.completedAt } });
      state.todos.set(todo.id, updated);
      return { description: `update todo ${todo.id}`, events: [todoEventOf("UPDATED", updated, list)] };
    },
  ],
  [
    2,
    async function createTodo(state, rng, at) {
      if (state.lists.size === 0) return undefined;
      const list = pick(rng, [...state.lists.values()]);
      const members = state.members.filter((m) => m.spaceId === list.spaceId);
      const ownerId = members.length > 0 && chance(rng, 0.8) ? pick(rng, members).userId : pick(rng, state.world.users).id;
      const todo: TodoRow = { id: randomId(rng, "t"), listId: list.id, ownerId, title: "New todo", completedAt: null, createdAt: at };
      await prisma.todo.create({ data: todo });
      state.todos.set(todo.id, todo);
      return { description: `create todo ${todo.id} in list ${list.id}`, events: [todoEventOf("CREATED", todo, list)] };
    },
  ],
  [
    3,
    async function flipListPrivacy(state, rng) {
      if (state.lists.size === 0) return undefined;
      const list = pick(rng, [...state.lists.values()]);
      const updated = { ...list, private: !list.private };
      await prisma.list.update({ where: { id: list.id }, data: { private: updated.private } });
      state.lists.set(list.id, updated);
      return { description: `make list ${list.id} ${updated.private ? "private" : "public"}`, events: [listEvent("UPDATED", updated)] };
    },
  ],
  [
    2,
    async function deleteTodo(state, rng) {
      if (state.todos.size === 0) return undefined;
      const todo = pick(rng, [...state.todos.values()]);
      await prisma.todo.delete({ where: { id: todo.id } });
      state.todos.delete(todo.id);
      return { description: `delete todo ${todo.id}`, events: [todoEventOf("DELETED", todo, state.lists.get(todo.listId)!)] };
    },
  ],
  [
    2,
    async function deleteList(state, rng) {
      if (state.lists.size === 0) return undefined;
      const list = pick(rng, [...state.lists.values()]);
      // Its todos go with it (onDelete: Cascade), and deleteList records one event: the list's.
      await prisma.list.delete({ where: { id: list.id } });
      state.lists.delete(list.id);
      for (const todo of [...state.todos.values()]) if (todo.listId === list.id) state.todos.delete(todo.id);
      return { description: `delete list ${list.id}`, events: [listEvent("DELETED", list)] };
    },
  ],
  [
    1,
    async function deleteTodoThenItsList(state, rng) {
      // The todo's DELETED event is then first decided with its list gone: on the list as it was.
      if (state.todos.size === 0) return undefined;
      const todo = pick(rng, [...state.todos.values()]);
      const list = state.lists.get(todo.listId)!;
      await prisma.todo.delete({ where: { id: todo.id } });
      await prisma.list.delete({ where: { id: list.id } });
      state.todos.delete(todo.id);
      state.lists.delete(list.id);
      for (const other of [...state.todos.values()]) if (other.listId === list.id) state.todos.delete(other.id);
      return { description: `delete todo ${todo.id}, then its list ${list.id}`, events: [todoEventOf("DELETED", todo, list), listEvent("DELETED", list)] };
    },
  ],
  [
    1,
    async function deleteTodoThenFlipItsList(state, rng) {
      // ACCESS.md's case: a deletion replayed after its list became private (or public) since.
      if (state.todos.size === 0) return undefined;
      const todo = pick(rng, [...state.todos.values()]);
      const list = state.lists.get(todo.listId)!;
      const flipped = { ...list, private: !list.private };
      await prisma.todo.delete({ where: { id: todo.id } });
      await prisma.list.update({ where: { id: list.id }, data: { private: flipped.private } });
      state.todos.delete(todo.id);
      state.lists.set(list.id, flipped);
      return {
        description: `delete todo ${todo.id}, then make its list ${list.id} ${flipped.private ? "private" : "public"}`,
        events: [todoEventOf("DELETED", todo, list), listEvent("UPDATED", flipped)],
      };
    },
  ],
  [
    2,
    async function removeMember(state, rng) {
      const candidates = state.members.filter((m) => removable(state, m));
      if (candidates.length === 0) return undefined;
      const member = pick(rng, candidates);
      await removeMembership(state, member);
      return { description: `remove ${member.role} ${member.userId} from space ${member.spaceId}`, events: [] };
    },
  ],
  [
    2,
    async function listOwnerLeaves(state, rng) {
      const leaving = [...state.lists.values()]
        .map((list) => memberOf(state, list.spaceId, list.ownerId))
        .filter((member): member is MemberRow => member !== undefined && removable(state, member));
      if (leaving.length === 0) return undefined;
      const member = pick(rng, leaving);
      await removeMembership(state, member);
      return { description: `list owner ${member.userId} (${member.role}) leaves space ${member.spaceId}`, events: [] };
    },
  ],
  [
    1,
    async function joinSpace(state, rng, at) {
      const joining = [...state.spaces.values()].flatMap((space) =>
        state.world.users.filter((user) => !memberOf(state, space.id, user.id)).map((user) => ({ space, user })),
      );
      if (joining.length === 0) return undefined;
      const { space, user } = pick(rng, joining);
      const role: Role = chance(rng, 0.3) ? "ADMIN" : "USER";
      const member: MemberRow = { id: randomId(rng, "m"), spaceId: space.id, userId: user.id, role, createdAt: at };
      await prisma.spaceMember.create({ data: member });
      state.members.push(member);
      state.everMember.add(`${space.id} ${user.id}`);
      return { description: `${user.id} joins space ${space.id} as ${role}`, events: [] };
    },
  ],
  [
    1,
    async function createList(state, rng, at) {
      // The API lets only a member create a list, as its owner.
      if (state.members.length === 0) return undefined;
      const owner = pick(rng, state.members);
      const list: ListRow = { id: randomId(rng, "l"), spaceId: owner.spaceId, ownerId: owner.userId, title: "New list", private: chance(rng, 0.4), createdAt: at };
      await prisma.list.create({ data: list });
      state.lists.set(list.id, list);
      return { description: `create ${list.private ? "private" : "public"} list ${list.id}`, events: [listEvent("CREATED", list)] };
    },
  ],
  [
    0.3,
    async function deleteSpace(state, rng) {
      if (state.spaces.size === 0) return undefined;
      const space = pick(rng, [...state.spaces.values()]);
      // deleteSpace records no event; the events of its lists and todos stay in the log.
      await prisma.space.delete({ where: { id: space.id } });
      state.spaces.delete(space.id);
      state.members = state.members.filter((m) => m.spaceId !== space.id);
      for (const list of [...state.lists.values()]) if (list.spaceId === space.id) state.lists.delete(list.id);
      for (const todo of [...state.todos.values()]) if (!state.lists.has(todo.listId)) state.todos.delete(todo.id);
      return { description: `delete space ${space.id}`, events: [] };
    },
  ],
];

async function randomChange(state: State, rng: Random, at: Date): Promise<Change | undefined> {
  const total = changes.reduce((sum, [weight]) => sum + weight, 0);
  // A few tries: an empty world may have nothing left to change.
  for (let attempt = 0; attempt < 10; attempt++) {
    let roll = rng() * total;
    const [, make] = changes.find(([weight]) => (roll -= weight) < 0) ?? changes[0]!;
    const change = await make(state, rng, at);
    if (change) return change;
  }
  return undefined;
}

// ------------------------------------------------------------------- compare

interface Mismatch {
  seed: number;
  world: number;
  after: string;
  event: string;
  viewer: string;
  batched: unknown;
  perViewer: unknown;
}

/** Subscriber ids no user has, to make the candidate set large. */
const NOBODIES = Array.from({ length: 500 }, (_, i) => `nobody-${i}`);

const totals = { worlds: 0, changes: 0, events: 0, decisions: 0, viewerChecks: 0, delivered: 0, subscribeChecks: 0 };
/** Statements per decision, by event shape: the same for one viewer as for all (checked per decision). */
const statementCounts = new Map<string, Set<number>>();
/** Situations the run went through, by the per-viewer answer; the end of the run checks the ones that matter occurred. */
const seen = new Map<string, number>();
const see = (label: string) => seen.set(label, (seen.get(label) ?? 0) + 1);

const describeEvent = (event: ChangeEvent) =>
  `#${event.id} ${event.kind} ${event.subject} space ${event.spaceId} list ${event.listId}` +
  `${event.todoId ? ` todo ${event.todoId}` : ""} (at the change: owner ${event.listOwnerId}, ${event.listPrivate ? "private" : "public"})`;

function standing(state: State, event: ChangeEvent, viewerId: string): string {
  const member = memberOf(state, event.spaceId, viewerId);
  const position = member ? `${member.role} member` : state.everMember.has(`${event.spaceId} ${viewerId}`) ? "former member" : "never a member";
  return `${position}${event.listOwnerId === viewerId ? ", list owner" : ""}`;
}

/** What a delivery is, for a mismatch message: the rows as the subscriber would get them. */
const shown = (delivered: DeliveredEvent | undefined) =>
  delivered === undefined ? "not delivered" : { todo: delivered.todo, list: delivered.list, event: describeEvent(delivered) };

function noteSituation(state: State, event: ChangeEvent, viewerId: string, delivered: boolean): void {
  const outcome = delivered ? "delivered" : "withheld";
  const member = memberOf(state, event.spaceId, viewerId) !== undefined;
  const listNow = state.lists.get(event.listId);
  see(`${event.kind} ${event.subject} ${outcome}`);
  if (!state.spaces.has(event.spaceId)) see(`space deleted since: ${outcome}`);
  if (!member && state.everMember.has(`${event.spaceId} ${viewerId}`)) {
    see(`former member: ${outcome}`);
    if (event.listOwnerId === viewerId) see(`list owner who left: ${outcome}`);
  }
  if (event.kind === "DELETED" && event.subject === "TODO" && member) {
    if (!listNow) see(`deleted todo, list gone, ${event.listPrivate ? "private" : "public"} then: ${outcome}`);
    else if (listNow.private !== event.listPrivate) see(`deleted todo, list made ${listNow.private ? "private" : "public"} since: ${outcome}`);
  }
  if (event.kind !== "DELETED" && event.subject === "TODO" && event.todoId && !state.todos.has(event.todoId)) see(`${event.kind} todo deleted since: ${outcome}`);
}

async function decideBothWays(
  state: State,
  rng: Random,
  event: ChangeEvent,
  after: string,
  contexts: Map<string, GraphQLContext>,
  mismatches: Mismatch[],
): Promise<void> {
  const viewers = state.world.users.map((user) => user.id);
  const report = (viewer: string, batchedAnswer: unknown, perViewer: unknown) =>
    mismatches.push({ seed: state.world.seed, world: state.world.index, after, event: describeEvent(event), viewer, batched: batchedAnswer, perViewer });

  // Statements are counted on a cold start (a fresh audience, nothing kept
  // from earlier events): kept memberships only ever save statements.
  const statements = async (candidates: string[]) => {
    const cold = createBatchedAudience(prisma, compiled);
    const audience = await cold.decide(event, candidates);
    return { audience, statements: cold.stats.sqlStatements };
  };
  // The receivers checked below come from the long-lived audience, which
  // keeps memberships from one event and world change to the next: the
  // changes must make it read them again.
  const cold = await statements(viewers);
  const all = { statements: cold.statements, audience: await batched.decide(event, viewers) };
  if (!isDeepStrictEqual(all.audience, cold.audience)) {
    report("(everyone)", [...all.audience.keys()], "decided from kept memberships, not as on a cold start");
  }
  const alone = pick(rng, viewers);
  const one = await statements([alone]);
  const shape = `${event.kind} ${event.subject}`;
  (statementCounts.get(shape) ?? statementCounts.set(shape, new Set()).get(shape)!).add(all.statements);
  if (one.statements !== all.statements) {
    report(alone, `${all.statements} statements for ${viewers.length} viewers`, `${one.statements} statements for this viewer alone`);
  }
  if (!isDeepStrictEqual(one.audience.get(alone), all.audience.get(alone))) {
    report(alone, shown(all.audience.get(alone)), `decided alone: ${JSON.stringify(shown(one.audience.get(alone)))}`);
  }
  if ([...one.audience.keys()].some((viewer) => viewer !== alone)) report(alone, [...one.audience.keys()], "decided alone, others received it");
  // And for a crowd: the world's users among hundreds of subscribers who are nobody's.
  const crowd = await statements([...viewers, ...NOBODIES]);
  if (crowd.statements !== all.statements) {
    report("(a crowd)", `${all.statements} statements for ${viewers.length} viewers`, `${crowd.statements} statements for ${viewers.length + NOBODIES.length}`);
  }
  if (!isDeepStrictEqual(crowd.audience, all.audience)) report("(a crowd)", [...crowd.audience.keys()], `in a crowd, not as ${[...all.audience.keys()]}`);

  for (const viewer of viewers) {
    const expected = await readableEvent(event, contexts.get(viewer)!);
    const actual = all.audience.get(viewer);
    if (!isDeepStrictEqual(actual, expected)) {
      report(`${viewer} (${standing(state, event, viewer)})`, shown(actual), shown(expected));
    }
    noteSituation(state, event, viewer, expected !== undefined);
    if (expected) totals.delivered += 1;
    totals.viewerChecks += 1;
  }
  totals.decisions += 1;
}

/**
 * The check when a subscription starts, for every user and every space and
 * list the world has had (deleted ones included): through the realtime's
 * batched check (all users asking in the same turn) and one readersOf for
 * them all, against each user's policy client.
 */
async function checkSubscribeBothWays(
  state: State,
  targets: SubscribeTarget[],
  after: string,
  contexts: Map<string, GraphQLContext>,
  mismatches: Mismatch[],
): Promise<void> {
  const viewers = state.world.users.map((user) => user.id);
  for (const target of targets) {
    const perViewer = await Promise.all(
      viewers.map(async (viewer) => {
        const { db } = contexts.get(viewer)!.fresh();
        const where = { where: { id: target.id }, select: { id: true } } as const;
        return (target.model === "space" ? await db.space.findFirst(where) : await db.list.findFirst(where)) !== null;
      }),
    );
    const throughCheck = await Promise.all(viewers.map((viewer) => realtime.readable(target, contexts.get(viewer)!)));
    const readers = await batched.readersOf(target.model, target.id, new Set(viewers));
    viewers.forEach((viewer, index) => {
      const expected = perViewer[index]!;
      const report = (got: unknown, how: string) =>
        mismatches.push({ seed: state.world.seed, world: state.world.index, after, event: `subscribe to ${target.model} ${target.id} (${how})`, viewer, batched: got, perViewer: expected });
      if (throughCheck[index] !== expected) report(throughCheck[index], "realtime.readable");
      if (readers.has(viewer) !== expected) report(readers.has(viewer), "readersOf");
      see(`subscribe to a ${target.model}: ${expected ? "allowed" : "refused"}`);
      totals.subscribeChecks += 1;
    });
  }
}

let eventSequence = 0n;

async function runWorld(world: GeneratedWorld): Promise<Mismatch[]> {
  // A stream of its own, so the world is the one worlds.ts makes from its seed.
  const rng = mulberry32(world.seed ^ 0x51ed270b);
  const state: State = {
    world,
    spaces: new Map(world.spaces.map((space) => [space.id, space])),
    members: [...world.members],
    everMember: new Set(world.members.map((m) => `${m.spaceId} ${m.userId}`)),
    lists: new Map(world.lists.map((list) => [list.id, list])),
    todos: new Map(world.todos.map((todo) => [todo.id, todo])),
  };
  const contexts = new Map(
    world.users.map((user) => [
      user.id,
      createContext({ requestId: `audience-${user.id}`, viewer: { id: user.id }, clientAddress: "127.0.0.1", logger: server.logger }),
    ]),
  );
  const events: ChangeEvent[] = [];
  const mismatches: Mismatch[] = [];
  // Every space and list the world has had: kept after they are deleted, lists created later added.
  const targets: SubscribeTarget[] = [
    ...world.spaces.map((space) => ({ model: "space" as const, id: space.id })),
    ...world.lists.map((list) => ({ model: "list" as const, id: list.id })),
  ];
  const steps = int(rng, 4, 12);
  for (let step = 1; step <= steps; step++) {
    const at = new Date(Date.UTC(2026, 1, 1) + world.index * 60_000 + step * 1000);
    const change = await randomChange(state, rng, at);
    if (!change) break;
    totals.changes += 1;
    for (const list of state.lists.values()) if (!targets.some((target) => target.id === list.id)) targets.push({ model: "list", id: list.id });
    for (const event of change.events) {
      // Made-up ids and txids, in log order: nothing here reads them but the comparison.
      eventSequence += 1n;
      events.push({ ...event, id: eventSequence, txid: eventSequence });
    }
    // Every event so far, as delivered now: the newest as a live subscriber
    // gets it, the older ones as a subscriber resuming after them would.
    const after = `change ${step} of ${steps} (${change.description})`;
    for (const event of events) await decideBothWays(state, rng, event, after, contexts, mismatches);
    await checkSubscribeBothWays(state, targets, after, contexts, mismatches);
  }
  totals.worlds += 1;
  totals.events += events.length;
  return mismatches;
}

const batches = Array.from({ length: Math.ceil(WORLDS / BATCH) }, (_, b) => [b * BATCH, Math.min(WORLDS, (b + 1) * BATCH)] as const);

describe(`batched audience against the per-viewer delivery check (${WORLDS} worlds, seed ${SEED})`, () => {
  it.each(batches)(
    "worlds %i to %i: for every event the batched receivers equal the per-viewer policy client's, DELETED events and departed members included",
    async (from, to) => {
      const worlds = Array.from({ length: to - from }, (_, i) => generateWorld(SEED, from + i));
      await insertWorlds(prisma, worlds);
      const mismatches: Mismatch[] = [];
      for (const world of worlds) mismatches.push(...(await runWorld(world)));
      if (mismatches.length > 0) console.log(`${mismatches.length} mismatches; first:\n${JSON.stringify(mismatches.slice(0, 3), null, 2)}`);
      expect(
        mismatches.slice(0, 20).map((m) => `seed ${m.seed} world ${m.world} after ${m.after}: event ${m.event} viewer ${m.viewer}`),
        `${mismatches.length} mismatches, the first 20 shown`,
      ).toEqual([]);
    },
    300_000,
  );

  it("went through the situations that matter, on both sides of each", () => {
    expect(totals.worlds, "the worlds above must all have run").toBe(WORLDS);
    const expected = [
      ...["CREATED", "UPDATED", "DELETED"].flatMap((kind) =>
        ["TODO", "LIST"].flatMap((subject) => [`${kind} ${subject} delivered`, `${kind} ${subject} withheld`]),
      ),
      "former member: withheld",
      "list owner who left: withheld",
      "space deleted since: withheld",
      "deleted todo, list gone, public then: delivered",
      "deleted todo, list gone, private then: delivered",
      "deleted todo, list gone, private then: withheld",
      "deleted todo, list made private since: withheld",
      "deleted todo, list made public since: delivered",
      "UPDATED todo deleted since: withheld",
      "subscribe to a space: allowed",
      "subscribe to a space: refused",
      "subscribe to a list: allowed",
      "subscribe to a list: refused",
    ];
    const missing = expected.filter((label) => !seen.has(label));
    expect(missing, `seen: ${[...seen].map(([label, count]) => `${label} (${count})`).sort().join("; ")}`).toEqual([]);
    // Nobody outside a space is ever delivered anything from it.
    expect(seen.get("former member: delivered")).toBeUndefined();
    expect(seen.get("space deleted since: delivered")).toBeUndefined();
  });

  afterAll(() => {
    const counts = [...statementCounts].map(([shape, set]) => `${shape}: ${[...set].sort().join("/")}`).join(", ");
    console.log(
      `audience: ${totals.worlds} worlds, ${totals.changes} changes, ${totals.events} events, ${totals.decisions} decisions, ` +
        `${totals.viewerChecks} per-viewer checks (${totals.delivered} delivered), ${totals.subscribeChecks} subscribe checks, 0 mismatches expected; statements per decision: ${counts}`,
        `\n${[...seen].map(([label, count]) => `${label} (${count})`).sort().join("; ")}`,
    );
  });
});
