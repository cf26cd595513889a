// The read rules of rules.ts, compiled into small expression trees that can be
// decided for many viewers over one loaded row, in memory.
//
// Why: realtime delivery must decide one event for thousands of subscribers.
// Asking the database once per subscriber (the policy client's way) costs a
// statement each; here the row is loaded once, with what its rule reads (the
// related rows it follows, and the candidate viewers' rows of the to-many
// relations it tests), and each viewer is decided by folding the tree over it.
//
// One copy of the rules: nothing here restates a rule. A rule is compiled by
// calling it with a sentinel viewer whose id is a string no real id can be,
// and reading the Prisma filter it returns: wherever the sentinel appears, the
// viewer's id goes. That holds for rules that only pass `viewer.id` into the
// filter, which is how every rule in rules.ts is written; a rule that branched
// on the viewer would compile to one branch, which is why the differential
// test (tests/domain/compiledRules.test.ts) checks every compiled rule against
// Prisma's own filtering on random worlds. Whatever the compiler cannot
// express (an operator it does not know, NOT, a to-many test that is not
// keyed by the viewer) throws UncompilableRule: callers then fall back to the
// policy client, slower but never more open.
//
// Without NOT, a comparison with NULL that SQL calls unknown can be folded as
// false: AND and OR of such comparisons keep the same rows as SQL's WHERE.
import { randomUUID } from "node:crypto";
import { relations, rules, type ModelName } from "./rules.js";

type Literal = string | number | boolean | null;

/** A value a rule compares with: a literal, or whoever is asking. */
export type Operand = { viewer: true } | { literal: Literal };

export type RuleExpr =
  | { op: "and"; items: RuleExpr[] }
  | { op: "or"; items: RuleExpr[] }
  /** A column of the row equals the operand. */
  | { op: "equals"; field: string; operand: Operand }
  /** A column of the row is one of the literals (`in: []` is false). */
  | { op: "in"; field: string; values: Literal[] }
  /** The to-one relation's row exists and matches. */
  | { op: "one"; relation: string; model: ModelName; item: RuleExpr }
  /**
   * Some (or, negated, none) of the to-many relation's rows match. `keyField`
   * equals the viewer in every match, so only the candidate viewers' rows of
   * the relation need loading.
   */
  | { op: "some"; relation: string; model: ModelName; keyField: string; item: RuleExpr; negated: boolean };

export class UncompilableRule extends Error {
  constructor(model: ModelName, detail: string) {
    super(`The rule for ${model} cannot be compiled: ${detail}`);
    this.name = "UncompilableRule";
  }
}

/** A viewer id no row can hold: ids are cuids, and this has a NUL in it. */
const SENTINEL_ID = `\u0000viewer:${randomUUID()}`;

/** The viewer the rules are called with to compile them. */
export const sentinelViewer = { id: SENTINEL_ID };

/** Turns the filter `where` (of rows of `model`) that a rule returned for the sentinel viewer into a tree. */
export function compileWhere(model: ModelName, where: unknown): RuleExpr {
  if (!isPlainObject(where)) throw new UncompilableRule(model, `a filter that is not an object (${describe(where)})`);
  const items: RuleExpr[] = [];
  for (const [key, value] of Object.entries(where)) {
    if (value === undefined) continue; // Prisma ignores undefined
    if (key === "AND" || key === "OR") {
      const parts = (Array.isArray(value) ? value : [value]).map((part) => compileWhere(model, part));
      items.push(key === "AND" ? and(parts) : { op: "or", items: parts });
    } else if (key === "NOT") {
      // SQL's NOT turns an unknown (a comparison with NULL) into unknown, not
      // true: folding it needs three-valued logic, which no rule needs yet.
      throw new UncompilableRule(model, "NOT");
    } else if (key in relations[model]) {
      items.push(compileRelation(model, key, value));
    } else {
      items.push(compileField(model, key, value));
    }
  }
  return and(items);
}

function compileRelation(model: ModelName, relation: string, value: unknown): RuleExpr {
  const target = relations[model][relation]!;
  if (!isPlainObject(value)) throw new UncompilableRule(model, `relation ${relation} tested with ${describe(value)}`);
  if (!target.many) {
    const keys = Object.keys(value);
    // `{ is: x }` and a bare `x` mean the same for a to-one relation.
    if (keys.length === 1 && keys[0] === "is") return { op: "one", relation, model: target.model, item: compileWhere(target.model, value.is) };
    if (keys.includes("is") || keys.includes("isNot")) throw new UncompilableRule(model, `relation ${relation}: only \`is\` is supported`);
    return { op: "one", relation, model: target.model, item: compileWhere(target.model, value) };
  }
  const keys = Object.keys(value);
  if (keys.length !== 1 || (keys[0] !== "some" && keys[0] !== "none")) {
    throw new UncompilableRule(model, `relation ${relation}: only \`some\` and \`none\` are supported, not ${keys.join(", ")}`);
  }
  const negated = keys[0] === "none";
  const item = compileWhere(target.model, value[keys[0]!]);
  const keyField = viewerKey(item);
  if (!keyField) throw new UncompilableRule(model, `relation ${relation}: the test is not keyed by the viewer (no \`field: viewer.id\` conjunct)`);
  return { op: "some", relation, model: target.model, keyField, item, negated };
}

function compileField(model: ModelName, field: string, value: unknown): RuleExpr {
  if (isLiteral(value)) return { op: "equals", field, operand: operand(model, value) };
  if (!isPlainObject(value)) throw new UncompilableRule(model, `field ${field} tested with ${describe(value)}`);
  const items: RuleExpr[] = [];
  for (const [operator, argument] of Object.entries(value)) {
    if (operator === "equals" && isLiteral(argument)) items.push({ op: "equals", field, operand: operand(model, argument) });
    else if (operator === "in" && Array.isArray(argument) && argument.every(isLiteral)) {
      if (argument.some((entry) => entry === SENTINEL_ID)) throw new UncompilableRule(model, `field ${field}: the viewer inside \`in\``);
      items.push({ op: "in", field, values: argument });
    } else throw new UncompilableRule(model, `field ${field}: operator ${operator} with ${describe(argument)}`);
  }
  return and(items);
}

function operand(model: ModelName, value: Literal): Operand {
  if (value === SENTINEL_ID) return { viewer: true };
  // The viewer's id folded into a larger string: not a plain comparison with it.
  if (typeof value === "string" && value.includes(SENTINEL_ID)) throw new UncompilableRule(model, "the viewer's id inside another value");
  return { literal: value };
}

/** The column that a conjunct `column: viewer.id` of `expr` names, if there is one. */
function viewerKey(expr: RuleExpr): string | undefined {
  const conjuncts = expr.op === "and" ? expr.items : [expr];
  for (const conjunct of conjuncts) {
    if (conjunct.op === "equals" && "viewer" in conjunct.operand) return conjunct.field;
  }
  return undefined;
}

function and(items: RuleExpr[]): RuleExpr {
  return items.length === 1 ? items[0]! : { op: "and", items };
}

// ------------------------------------------------------------------- loading

/**
 * The Prisma `include` that loads a row of the expression's model with what
 * the expression reads: each to-one relation it follows, and of each to-many
 * relation it tests only the rows keyed by one of `candidates`.
 */
export function includeFor(
  expr: RuleExpr,
  candidates: Iterable<string>,
  /**
   * To-many tests, reached from the row through to-one relations only, whose
   * rows the caller loads itself (and puts on the loaded rows before
   * evaluate) instead of having them included here.
   */
  loadedElsewhere?: (test: SomeExpr) => boolean,
): Record<string, unknown> | undefined {
  const include: Record<string, unknown> = {};
  collectIncludes(expr, candidates, include, loadedElsewhere);
  return Object.keys(include).length ? include : undefined;
}

export type SomeExpr = Extract<RuleExpr, { op: "some" }>;

/**
 * The columns `expr` reads of its own row, or undefined when it follows a
 * relation (then the whole row, with includeFor, is what it needs).
 */
export function columnsRead(expr: RuleExpr): Set<string> | undefined {
  switch (expr.op) {
    case "and":
    case "or": {
      const columns = new Set<string>();
      for (const item of expr.items) {
        const read = columnsRead(item);
        if (!read) return undefined;
        for (const column of read) columns.add(column);
      }
      return columns;
    }
    case "equals":
    case "in":
      return new Set([expr.field]);
    case "one":
    case "some":
      return undefined;
  }
}

/**
 * The to-many tests of `expr` that `loadedElsewhere` picked, each with the
 * loaded row (reached from `row` through to-one relations) whose relation
 * the caller fills in. Rows whose to-one relation is null are skipped: the
 * test under them is never decided.
 */
export function rowsToFill(expr: RuleExpr, row: Row, loadedElsewhere: (test: SomeExpr) => boolean): { test: SomeExpr; row: Row }[] {
  const found: { test: SomeExpr; row: Row }[] = [];
  const visit = (node: RuleExpr, at: Row): void => {
    switch (node.op) {
      case "and":
      case "or":
        for (const item of node.items) visit(item, at);
        return;
      case "one": {
        const related = at[node.relation];
        if (related !== null && related !== undefined) visit(node.item, related as Row);
        return;
      }
      case "some":
        if (loadedElsewhere(node)) found.push({ test: node, row: at });
        return;
      default:
        return;
    }
  };
  visit(expr, row);
  return found;
}

type IncludeEntry = { include?: Record<string, unknown>; where?: Record<string, unknown> };

function collectIncludes(
  expr: RuleExpr,
  candidates: Iterable<string>,
  into: Record<string, unknown>,
  loadedElsewhere: ((test: SomeExpr) => boolean) | undefined,
): void {
  switch (expr.op) {
    case "and":
    case "or":
      for (const item of expr.items) collectIncludes(item, candidates, into, loadedElsewhere);
      return;
    case "equals":
    case "in":
      return;
    case "one":
    case "some": {
      if (expr.op === "some" && loadedElsewhere?.(expr)) return;
      const entry = ((into[expr.relation] as IncludeEntry | undefined) ??= {});
      if (expr.op === "some") {
        const keyed = { [expr.keyField]: { in: [...candidates] } };
        // Two tests of one relation by different keys would need both key sets loaded.
        if (entry.where && JSON.stringify(entry.where) !== JSON.stringify(keyed)) {
          throw new UncompilableRule(expr.model, `relation ${expr.relation} keyed by two different columns`);
        }
        entry.where = keyed;
      }
      const nested = (entry.include ??= {});
      // Below a to-many relation everything is included here: rowsToFill only follows to-one relations.
      collectIncludes(expr.item, candidates, nested, expr.op === "one" ? loadedElsewhere : undefined);
      if (Object.keys(nested).length === 0) delete entry.include;
      return;
    }
  }
}

// ------------------------------------------------------------------ deciding

type Row = Record<string, unknown>;

/**
 * Decides `expr` for one viewer over a row loaded with includeFor(expr, c),
 * where `c` held the viewer. A viewer outside `c` would be decided on
 * relation rows that were never loaded for them, so it is refused.
 */
export function evaluate(expr: RuleExpr, row: Row, viewerId: string, candidates: ReadonlySet<string>): boolean {
  if (!candidates.has(viewerId)) throw new Error("evaluate: the viewer was not among the candidates the row was loaded for");
  return decide(expr, row, viewerId);
}

function decide(expr: RuleExpr, row: Row, viewerId: string): boolean {
  switch (expr.op) {
    case "and":
      return expr.items.every((item) => decide(item, row, viewerId));
    case "or":
      return expr.items.some((item) => decide(item, row, viewerId));
    case "equals":
      return row[expr.field] === ("viewer" in expr.operand ? viewerId : expr.operand.literal);
    case "in":
      return expr.values.includes(row[expr.field] as Literal);
    case "one": {
      const related = row[expr.relation];
      if (related === undefined) throw new Error(`evaluate: relation ${expr.relation} was not loaded`);
      return related !== null && decide(expr.item, related as Row, viewerId);
    }
    case "some": {
      const found = (rowsByKey(row, expr.relation, expr.keyField).get(viewerId) ?? []).some((related) => decide(expr.item, related, viewerId));
      return expr.negated ? !found : found;
    }
  }
}

/**
 * The candidates for whom `expr` holds over a row loaded with
 * includeFor(expr, candidates): what evaluate() says for each, worked out
 * once for all of them. Each test of the tree yields the viewers it holds
 * for (everyone, nobody, the one a column names, or a set), and AND and OR
 * intersect and join those, so the cost grows with the rows loaded, not with
 * candidates times the size of the tree. A tree with a `none` test (whoever
 * no row matches) is decided viewer by viewer instead. The set returned may
 * be `candidates` itself, or one an earlier call returned (read-only).
 */
export function allowedAmong(expr: RuleExpr, row: Row, candidates: ReadonlySet<string>): ReadonlySet<string> {
  if (hasNone(expr)) {
    const allowed = new Set<string>();
    for (const viewerId of candidates) if (decide(expr, row, viewerId)) allowed.add(viewerId);
    return allowed;
  }
  const holds = viewersFor(expr, row, candidates);
  if (holds === EVERYONE) return candidates;
  if (holds === NOBODY) return NO_VIEWERS;
  if (typeof holds === "string") return candidates.has(holds) ? new Set([holds]) : NO_VIEWERS;
  return intersectSets(holds, candidates);
}

const NO_VIEWERS: ReadonlySet<string> = new Set();

/** Every viewer, no viewer, the one viewer a column names, or a set of them. */
type Viewers = typeof EVERYONE | typeof NOBODY | string | ReadonlySet<string>;
const EVERYONE = true;
const NOBODY = false;

/**
 * What `expr` holds for over `row`. Given `candidates`, a viewer a column
 * names who is not among them is nobody: the answer is only ever read within
 * the candidates (allowedAmong intersects with them), and a list's owner who
 * is not subscribed (a writer, typically) would otherwise be joined to the
 * space's members in a new set with every event, where without them the
 * members' set, and what is kept for it, comes back. Below a to-many test
 * the rows' results are kept for the rows alone, so no candidates go there.
 */
function viewersFor(expr: RuleExpr, row: Row, candidates?: ReadonlySet<string>): Viewers {
  switch (expr.op) {
    case "and": {
      let result: Viewers = EVERYONE;
      for (const item of expr.items) {
        result = intersect(result, viewersFor(item, row, candidates));
        if (result === NOBODY) return NOBODY;
      }
      return result;
    }
    case "or": {
      const union = new Union();
      for (const item of expr.items) if (union.add(viewersFor(item, row, candidates))) return EVERYONE;
      return union.result();
    }
    case "equals": {
      const value = row[expr.field];
      if ("viewer" in expr.operand) return typeof value === "string" && (!candidates || candidates.has(value)) ? value : NOBODY;
      return value === expr.operand.literal ? EVERYONE : NOBODY;
    }
    case "in":
      return expr.values.includes(row[expr.field] as Literal) ? EVERYONE : NOBODY;
    case "one": {
      const related = row[expr.relation];
      if (related === undefined) throw new Error(`evaluate: relation ${expr.relation} was not loaded`);
      return related === null ? NOBODY : viewersFor(expr.item, related as Row, candidates);
    }
    case "some": {
      const related = row[expr.relation];
      if (!Array.isArray(related)) throw new Error(`evaluate: relation ${expr.relation} was not loaded`);
      // Loaded rows are never changed, and the memberships kept between
      // events (src/realtime/relationCache.ts) are the same array from one
      // event to the next: what a test holds for over them is worked out once.
      let byTest = someResults.get(related);
      if (!byTest) someResults.set(related, (byTest = new WeakMap()));
      let result = byTest.get(expr);
      if (result === undefined) {
        const union = new Union();
        let everyone = false;
        for (const entry of related as Row[]) {
          if (union.add(viewersFor(expr.item, entry))) {
            everyone = true;
            break;
          }
        }
        result = everyone ? EVERYONE : union.result();
        byTest.set(expr, result);
      }
      return result;
    }
  }
}

const someResults = new WeakMap<object, WeakMap<RuleExpr, Viewers>>();

function intersect(a: Viewers, b: Viewers): Viewers {
  if (a === NOBODY || b === NOBODY) return NOBODY;
  if (a === EVERYONE || a === b) return b;
  if (b === EVERYONE) return a;
  if (typeof a === "string") return typeof b === "string" ? (a === b ? a : NOBODY) : b.has(a) ? a : NOBODY;
  if (typeof b === "string") return a.has(b) ? b : NOBODY;
  return intersectSets(a, b);
}

// Sets of viewers are never changed once made, and the same ones come back
// from one event to the next (the kept memberships' results above, a
// tailer's audience): their intersection is worked out once per pair.
const intersections = new WeakMap<ReadonlySet<string>, WeakMap<ReadonlySet<string>, ReadonlySet<string>>>();

function intersectSets(a: ReadonlySet<string>, b: ReadonlySet<string>): ReadonlySet<string> {
  if (a === b) return a;
  let withA = intersections.get(a);
  if (!withA) intersections.set(a, (withA = new WeakMap()));
  let both = withA.get(b);
  if (!both) {
    const [small, large] = a.size <= b.size ? [a, b] : [b, a];
    const made = new Set<string>();
    for (const viewerId of small) if (large.has(viewerId)) made.add(viewerId);
    // All of the smaller one: that set itself, not a copy of it.
    both = made.size === small.size ? small : made;
    withA.set(b, both);
  }
  return both;
}

/**
 * Joins viewer sets, without a set made for each single viewer, and without
 * a copy of a set that is all there is to join (so the same set, and what is
 * kept for it, comes back from one event to the next).
 */
class Union {
  private single: string | undefined;
  /** A set added alone, not copied: never changed here. */
  private borrowed: ReadonlySet<string> | undefined;
  /** Made once a second viewer or set is added. */
  private many: Set<string> | undefined;

  /** True once the union is everyone (nothing added later can change that). */
  add(viewers: Viewers): boolean {
    if (viewers === EVERYONE) return true;
    if (viewers === NOBODY) return false;
    if (!this.many) {
      if (this.single === undefined && this.borrowed === undefined) {
        if (typeof viewers === "string") this.single = viewers;
        else this.borrowed = viewers;
        return false;
      }
      if (viewers === this.single || viewers === this.borrowed) return false;
      // A viewer joined with a set that already holds them (a list's owner
      // and its space's members) is that set: kept as it is, not copied, so
      // that the same set, and what is kept for it, comes back next event.
      if (this.borrowed && typeof viewers === "string" && this.borrowed.has(viewers)) return false;
      if (this.single !== undefined && typeof viewers !== "string" && viewers.has(this.single)) {
        this.single = undefined;
        this.borrowed = viewers;
        return false;
      }
      this.many = new Set(this.borrowed ?? [this.single!]);
      this.single = undefined;
      this.borrowed = undefined;
    }
    if (typeof viewers === "string") this.many.add(viewers);
    else for (const viewerId of viewers) this.many.add(viewerId);
    return false;
  }

  result(): Viewers {
    return this.many ?? this.borrowed ?? this.single ?? NOBODY;
  }
}

const withNone = new WeakMap<RuleExpr, boolean>();

function hasNone(expr: RuleExpr): boolean {
  let answer = withNone.get(expr);
  if (answer === undefined) {
    switch (expr.op) {
      case "and":
      case "or":
        answer = expr.items.some(hasNone);
        break;
      case "one":
        answer = hasNone(expr.item);
        break;
      case "some":
        answer = expr.negated || hasNone(expr.item);
        break;
      default:
        answer = false;
    }
    withNone.set(expr, answer);
  }
  return answer;
}

// Thousands of viewers are decided over the same loaded rows: index each
// to-many relation by its key once, instead of scanning it per viewer.
const indexes = new WeakMap<object, Map<string, Map<unknown, Row[]>>>();

function rowsByKey(row: Row, relation: string, keyField: string): Map<unknown, Row[]> {
  const related = row[relation];
  if (!Array.isArray(related)) throw new Error(`evaluate: relation ${relation} was not loaded`);
  let byKeyField = indexes.get(related);
  if (!byKeyField) indexes.set(related, (byKeyField = new Map()));
  let index = byKeyField.get(keyField);
  if (!index) {
    index = new Map();
    for (const entry of related as Row[]) {
      const key = entry[keyField];
      const bucket = index.get(key);
      if (bucket) bucket.push(entry);
      else index.set(key, [entry]);
    }
    byKeyField.set(keyField, index);
  }
  return index;
}

// ------------------------------------------------------------------- helpers

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) && Object.getPrototypeOf(value) === Object.prototype;
}

function isLiteral(value: unknown): value is Literal {
  return value === null || typeof value === "string" || typeof value === "number" || typeof value === "boolean";
}

function describe(value: unknown): string {
  if (value instanceof Date) return "a date";
  return Array.isArray(value) ? "an array" : typeof value;
}

/** A model's read rule (rules.ts), compiled. */
export function compileReadRule(model: ModelName): RuleExpr {
  return compileWhere(model, rules[model].read(sentinelViewer));
}

/** Both expressions hold. */
export function allOf(...items: RuleExpr[]): RuleExpr {
  return and(items);
}
