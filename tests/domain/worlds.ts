// Random worlds for the randomized tests of the access rules (policyOracle,
// compiledRules, realtime/audience): users, spaces, memberships with roles,
// members who left, public and private lists owned by members, former members
// and strangers, todos, tied timestamps. Every world is made from its own
// seed, so a failure names a seed and world that replay it exactly.
import type { ListRow, Role, SpaceRow, TodoRow, UserRow, World } from "./support.js";

/** mulberry32: a tiny seeded PRNG, so every world can be replayed from its seed. */
export function mulberry32(seed: number) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export type Random = ReturnType<typeof mulberry32>;
export const int = (rng: Random, min: number, max: number) => min + Math.floor(rng() * (max - min + 1));
export const chance = (rng: Random, p: number) => rng() < p;
export const pick = <T>(rng: Random, items: readonly T[]): T => items[Math.floor(rng() * items.length)]!;

let idSequence = 0;
const pidTag = process.pid.toString(36).padStart(4, "0").slice(-4);
/**
 * Fixed-length ids whose order is random (the random part comes first) and
 * unique (the sequence comes last), so that ordering by id is really tested.
 */
export function randomId(rng: Random, prefix: string): string {
  const random = Math.floor(rng() * 36 ** 5).toString(36).padStart(5, "0");
  return `${prefix}${random}${pidTag}${(++idSequence).toString(36).padStart(6, "0")}`;
}

export interface GeneratedWorld extends World {
  index: number;
  seed: number;
  /** Page size for the small pages of this world. */
  k: number;
}

/** The seed of world `index` of a run started from `baseSeed`. */
export const worldSeed = (baseSeed: number, index: number) => (baseSeed + index * 7919) >>> 0;

export function generateWorld(baseSeed: number, index: number): GeneratedWorld {
  const seed = worldSeed(baseSeed, index);
  const rng = mulberry32(seed);
  const base = Date.UTC(2026, 0, 1) + index * 60_000;
  // Few distinct instants, so that createdAt ties (broken by id) are common.
  const at = () => new Date(base + int(rng, 0, 4) * 1000);

  const users: UserRow[] = Array.from({ length: int(rng, 3, 6) }, () => {
    const id = randomId(rng, "u");
    return { id, email: `${id}@example.com`, name: null, createdAt: at() };
  });
  const world: GeneratedWorld = { index, seed, k: int(rng, 1, 3), users, spaces: [], members: [], lists: [], todos: [] };

  for (let s = int(rng, 1, 3); s > 0; s--) {
    const id = randomId(rng, "s");
    // The owner may have left, or have been deleted (ownerId null).
    const owner = chance(rng, 0.1) ? null : pick(rng, users);
    const space: SpaceRow = { id, name: `Space ${id}`, slug: id.slice(0, 16), ownerId: owner?.id ?? null, createdAt: at() };
    world.spaces.push(space);
    const members = users.filter((user) => user.id === owner?.id ? chance(rng, 0.85) : chance(rng, 0.5));
    members.forEach((user, i) => {
      // Every space keeps an ADMIN, as the API guarantees.
      const role: Role = i === 0 || chance(rng, 0.3) ? "ADMIN" : "USER";
      world.members.push({ id: randomId(rng, "m"), spaceId: id, userId: user.id, role, createdAt: at() });
    });
    // Lists and todos may be owned by anyone of the world: current members,
    // members who left, or users never seen in the space.
    for (let l = int(rng, 0, 4); l > 0; l--) {
      const list: ListRow = {
        id: randomId(rng, "l"),
        spaceId: id,
        ownerId: chance(rng, 0.75) && members.length > 0 ? pick(rng, members).id : pick(rng, users).id,
        title: "List",
        private: chance(rng, 0.35),
        createdAt: at(),
      };
      world.lists.push(list);
      for (let t = int(rng, 0, 5); t > 0; t--) {
        const createdAt = at();
        world.todos.push({
          id: randomId(rng, "t"),
          listId: list.id,
          ownerId: chance(rng, 0.5) ? list.ownerId : pick(rng, users).id,
          title: "Todo",
          completedAt: chance(rng, 0.4) ? createdAt : null,
          createdAt,
        });
      }
    }
  }
  return world;
}
