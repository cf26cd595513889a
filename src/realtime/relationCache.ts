// The memberships an event's decision reads, kept from one event to the next.
//
// Deciding an event for 10,000 subscribers of one space reads those 10,000
// viewers' memberships (audience.ts): a statement that returns 10,000 rows,
// tens of milliseconds of database and server time, for every event, though
// memberships change far less often than todos. So they are kept here, per
// space, and used only while they are still current: the space row, loaded
// with every event's row anyway, carries a version of its memberships that
// triggers bump in the same transaction as any change to them, once per
// statement (migrations 20261204000000_space_members_version and
// 20261204120000_space_members_version_per_statement; only equality is
// compared here, so how far it moves does not matter). The version is read after the event
// committed, as the memberships themselves were before, so a removal
// committed before an event still revokes it: the version has moved, and the
// memberships are read again.
//
// Only the candidates' rows are read, as before: the rows of viewers asked
// about earlier at the same version are kept, and so is the fact that a viewer
// has none (not a member), so a hit costs no statement at all.
import type { RawPrismaClient } from "../db/database.js";
import type { Prisma } from "../generated/prisma/client.js";
import { columnsRead, includeFor, type SomeExpr } from "../policy/compiledRules.js";

type Row = Record<string, unknown>;

/** A to-many relation kept between events, and the column of its parent row that versions it. */
interface VersionedRelation {
  /** The rows' model, as the compiled rule names it. */
  model: SomeExpr["model"];
  relation: string;
  /** The parent row's column that changes whenever the relation's rows do. */
  versionColumn: string;
  /** The rows' column naming the parent. */
  parentKey: string;
  /** Reads the rows matching `where`, in the shape the test reads (shapeFor). */
  read(prisma: RawPrismaClient, where: Record<string, unknown>, shape: RowShape): Promise<Row[]>;
}

const VERSIONED: readonly VersionedRelation[] = [
  {
    model: "spaceMember",
    relation: "members",
    versionColumn: "membersVersion",
    parentKey: "spaceId",
    read: (prisma, where, shape) =>
      // Built from the compiled rule, which Prisma's types cannot follow.
      prisma.spaceMember.findMany({ where, ...shape } as Prisma.SpaceMemberFindManyArgs) as Promise<Row[]>,
  },
];

type RowShape = { select: Record<string, true> } | { include?: Record<string, unknown> };

/**
 * What a kept row needs: its id, and the columns the test reads when it
 * reads no relation (10,000 membership rows read whole cost about twice as
 * much, their dates included); else the whole row with what it follows.
 */
function shapeFor(test: SomeExpr): RowShape {
  const columns = columnsRead(test.item);
  if (!columns) {
    const include = includeFor(test.item, []);
    return include ? { include } : {};
  }
  return { select: Object.fromEntries(["id", test.keyField, ...columns].map((column) => [column, true])) };
}

interface Kept {
  version: unknown;
  keyField: string;
  /** The rows read so far, one array replaced (never changed) as more are read: evaluate indexes it once. */
  rows: Row[];
  /** Every key asked about at this version, with rows or without. */
  asked: Set<string>;
  /** Candidate sets all of whose keys are in `asked` (a tailer hands the same set from one event to the next). */
  covered: WeakSet<ReadonlySet<string>>;
}

export interface RelationCache {
  /** Whether the test's rows come from here (the rest of the row is loaded without them). */
  handles(test: SomeExpr): boolean;
  /** Puts the candidates' rows of the test's relation on `parent`, read or kept. */
  fill(test: SomeExpr, parent: Row, candidates: ReadonlySet<string>): Promise<void>;
}

/**
 * `maxParents`: how many parents' rows are kept at most; the ones used
 * longest ago go first.
 */
export function createRelationCache(prisma: RawPrismaClient, maxParents = 10_000): RelationCache {
  const kept = new Map<string, Kept>();
  // The Map's order is the order of use: the first entry is the one used longest ago.
  const keep = (key: string, entry: Kept) => {
    kept.delete(key);
    kept.set(key, entry);
    if (kept.size > maxParents) kept.delete(kept.keys().next().value!);
  };
  /** The rows kept for the parent at this version, made empty if there are none. */
  const current = (key: string, version: unknown, keyField: string): Kept => {
    const entry = kept.get(key);
    if (entry && entry.version === version && entry.keyField === keyField) {
      keep(key, entry);
      return entry;
    }
    const fresh: Kept = { version, keyField, rows: [], asked: new Set(), covered: new WeakSet() };
    // A decision that read an older version does not replace a newer copy.
    if (!entry || !isNewer(entry.version, version)) keep(key, fresh);
    return fresh;
  };
  const versioned = (test: SomeExpr) => VERSIONED.find((entry) => entry.model === test.model && entry.relation === test.relation);

  return {
    handles: (test) => versioned(test) !== undefined,
    async fill(test, parent, candidates) {
      const relation = versioned(test);
      if (!relation) throw new Error(`relationCache: ${test.relation} is not kept here`);
      const parentId = String(parent.id);
      const version = parent[relation.versionColumn];
      if (version === undefined) throw new Error(`relationCache: ${relation.versionColumn} was not loaded`);
      const key = `${relation.model}.${relation.relation}\u0000${parentId}`;
      const entry = current(key, version, test.keyField);
      const missing = entry.covered.has(candidates) ? [] : [...candidates].filter((candidate) => !entry.asked.has(candidate));
      if (missing.length > 0) {
        const read = await relation.read(prisma, { [relation.parentKey]: parentId, [test.keyField]: { in: missing } }, shapeFor(test));
        // Another decision may have read the same keys meanwhile: keep one row of each.
        const known = new Set(entry.rows.map((row) => row.id));
        entry.rows = [...entry.rows, ...read.filter((row) => !known.has(row.id))];
        for (const candidate of missing) entry.asked.add(candidate);
      }
      entry.covered.add(candidates);
      parent[test.relation] = entry.rows;
    },
  };
}

function isNewer(version: unknown, than: unknown): boolean {
  return typeof version === "bigint" && typeof than === "bigint" ? version > than : false;
}
