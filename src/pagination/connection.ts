// Relay-style cursor pagination over rows ordered by (createdAt, id). A cursor
// is the opaque, base64url-encoded position of a row in that order, so a page
// is a keyset query: no OFFSET, stable while rows are added or removed.
import { badUserInput } from "../errors.js";

export interface OrderedRow {
  id: string;
  createdAt: Date;
}

/** What a connection field resolves to; edges, nodes etc. derive from it. */
export interface Page<Row extends OrderedRow> {
  rows: Row[];
  hasNextPage: boolean;
  /** The page was requested with `after`, so it starts after the first row. */
  hasPreviousPage: boolean;
  /** Counted on demand: only when the operation selects totalCount. */
  totalCount: () => Promise<number>;
}

export interface Edge<Row extends OrderedRow> {
  cursor: string;
  node: Row;
}

export interface PageArgs {
  first: number;
  after: { createdAt: Date; id: string } | undefined;
}

export const MAX_PAGE_SIZE = 100;

export function encodeCursor(row: OrderedRow): string {
  return Buffer.from(JSON.stringify([row.createdAt.getTime(), row.id])).toString("base64url");
}

export function decodeCursor(cursor: string): { createdAt: Date; id: string } {
  try {
    const decoded: unknown = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
    if (
      Array.isArray(decoded) &&
      decoded.length === 2 &&
      Number.isSafeInteger(decoded[0]) &&
      typeof decoded[1] === "string" &&
      decoded[1].length > 0 &&
      decoded[1].length <= 64
    ) {
      const position = { createdAt: new Date(decoded[0] as number), id: decoded[1] };
      // A time outside Date's range would reach the database as an invalid
      // date; and Buffer skips characters outside the alphabet, so only the
      // exact encoding of the position counts as that cursor.
      if (!Number.isNaN(position.createdAt.getTime()) && encodeCursor(position) === cursor) return position;
    }
  } catch {
    // Falls through to the error below: any undecodable cursor is the same mistake.
  }
  throw badUserInput("That cursor is not valid.", "after");
}

/** Validates `first`/`after` as the client sent them. */
export function parsePageArgs(first: number | null | undefined, after: string | null | undefined, defaultFirst: number): PageArgs {
  const size = first ?? defaultFirst;
  if (!Number.isInteger(size) || size < 0 || size > MAX_PAGE_SIZE) {
    throw badUserInput(`first must be between 0 and ${MAX_PAGE_SIZE}.`, "first");
  }
  return { first: size, after: after == null ? undefined : decodeCursor(after) };
}

/** The `where` that selects rows strictly after the cursor. */
export function afterCursorFilter(after: PageArgs["after"]) {
  if (!after) return undefined;
  return {
    OR: [{ createdAt: { gt: after.createdAt } }, { createdAt: after.createdAt, id: { gt: after.id } }],
  };
}

export const pageOrder = [{ createdAt: "asc" as const }, { id: "asc" as const }];

/** Turns first+1 fetched rows into a page. */
export function toPage<Row extends OrderedRow>(rows: Row[], page: PageArgs, totalCount: () => Promise<number>): Page<Row> {
  return {
    rows: rows.slice(0, page.first),
    hasNextPage: rows.length > page.first,
    hasPreviousPage: page.after !== undefined,
    totalCount,
  };
}

/** Field resolvers shared by every connection type. */
export const connectionResolvers = {
  edges: <Row extends OrderedRow>(page: Page<Row>): Edge<Row>[] =>
    page.rows.map((row) => ({ cursor: encodeCursor(row), node: row })),
  nodes: <Row extends OrderedRow>(page: Page<Row>): Row[] => page.rows,
  pageInfo: <Row extends OrderedRow>(page: Page<Row>) => {
    const first = page.rows[0];
    const last = page.rows.at(-1);
    return {
      hasNextPage: page.hasNextPage,
      hasPreviousPage: page.hasPreviousPage,
      startCursor: first ? encodeCursor(first) : null,
      endCursor: last ? encodeCursor(last) : null,
    };
  },
  totalCount: <Row extends OrderedRow>(page: Page<Row>) => page.totalCount(),
};
