// The raw, unbound Prisma client reads and writes every row; only the policy
// client (src/policy/client.ts) applies ACCESS.md. So the raw client, and
// anything that can make one, may be imported only where the design says:
//
//   src/policy/**        the enforcing client wraps it
//   src/db/**            opens it (adapters, migrations, statement counting)
//   src/modules/auth/**  sign-up and log-in, before there is a viewer
//   src/realtime/**      the event log and its tailer read the Event table,
//                        which has no per-user rows; every event is re-checked
//                        through the subscriber's policy client before delivery
//   src/webhooks/**      the dispatcher reads the event log and the delivery
//                        job keeps the state of deliveries (leases, attempts);
//                        every body is read through the webhook creator's
//                        policy client (src/webhooks/payload.ts)
//   src/jobs/**          hands the database to the queue and its jobs; the
//                        worker entry point opens the database
//   src/server.ts        opens the database
//   src/context.ts       hands the raw client to createPolicyClient
//   prisma/seed.ts, prisma.config.ts   the seed and the Prisma CLI's config
//   bench/**             seeds its data and measures the unfiltered baseline
//   tests/**             (not scanned) write worlds and check the database
//
// Everywhere else, a module may import only *types* of rows and inputs
// (`import type { List } from ".../generated/prisma/client.js"`). This test
// parses every source file with the TypeScript compiler and fails naming the
// file, line and import of any other use. The checker itself is tested first
// on made-up sources, so a checker that sees nothing cannot pass.
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";
import { relations } from "../../src/policy/rules.js";

const ROOT = path.resolve(import.meta.dirname, "../..");

/** Files (repo-relative, forward slashes) allowed to hold the raw client. */
const ALLOWED: readonly RegExp[] = [
  /^src\/policy\//,
  /^src\/db\//,
  /^src\/modules\/auth\//,
  /^src\/realtime\//,
  /^src\/webhooks\//,
  /^src\/jobs\//,
  /^src\/server\.ts$/,
  /^src\/context\.ts$/,
  /^prisma\/seed\.ts$/,
  /^prisma\.config\.ts$/,
  /^bench\//,
];

// Modules that are, or can make, a raw client: the generated client, the
// database module, and the drivers and adapters beneath them.
const GENERATED_PRISMA = /^src\/generated\/prisma(\/|$)/;
const DATABASE_MODULE = /^src\/db\/database$/;
const RAW_PACKAGES = /^(@prisma\/client|@prisma\/adapter-pg|pglite-prisma-adapter|@electric-sql\/pglite|pg)(\/|$)/;

/** Type names that stand for the raw client itself, refused even as types. */
const RAW_CLIENT_TYPES = new Set(["PrismaClient", "RawPrismaClient"]);

interface Violation {
  file: string;
  line: number;
  /** The import statement as written. */
  statement: string;
  reason: string;
}

/** What a module specifier names: a repo-relative module path (no extension) or a package. */
function target(file: string, specifier: string): { kind: "module"; path: string } | { kind: "package"; name: string } {
  if (!specifier.startsWith(".")) return { kind: "package", name: specifier };
  const resolved = path.posix.normalize(path.posix.join(path.posix.dirname(file), specifier));
  return { kind: "module", path: resolved.replace(/\.(js|ts|mjs|cjs|mts|cts)$/, "").replace(/\/index$/, "") };
}

function rawKind(file: string, specifier: string): "generated" | "database" | "package" | undefined {
  const named = target(file, specifier);
  if (named.kind === "package") return RAW_PACKAGES.test(named.name) ? "package" : undefined;
  if (GENERATED_PRISMA.test(named.path)) return "generated";
  if (DATABASE_MODULE.test(named.path)) return "database";
  return undefined;
}

/**
 * The raw-client imports of one source file, wherever it lives (`file` is
 * repo-relative). Type-only imports are not counted, except the client's own
 * types (PrismaClient, RawPrismaClient): a module that accepts one is handed a
 * raw client.
 */
function rawClientImports(file: string, source: string): Violation[] {
  const sourceFile = ts.createSourceFile(file, source, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const found: Violation[] = [];
  const report = (node: ts.Node, reason: string) => {
    const { line } = sourceFile.getLineAndCharacterOfPosition(node.getStart(sourceFile));
    found.push({ file, line: line + 1, statement: node.getText(sourceFile).replace(/\s+/g, " "), reason });
  };
  const describeKind = (kind: "generated" | "database" | "package") =>
    kind === "generated" ? "the generated Prisma client" : kind === "database" ? "the database module" : "a database driver";

  /** Names brought in by an import or export clause, with whether each is type-only. */
  const checkNames = (
    node: ts.Node,
    kind: "generated" | "database" | "package",
    names: { name: string; typeOnly: boolean }[],
    whole: { typeOnly: boolean; opaque: boolean },
  ) => {
    // A side-effect import, a namespace import or `export *` brings everything in.
    if (whole.opaque && !whole.typeOnly) return report(node, `imports all of ${describeKind(kind)}`);
    for (const { name, typeOnly } of names) {
      if (!typeOnly && !whole.typeOnly) return report(node, `imports the value '${name}' from ${describeKind(kind)}`);
      if (RAW_CLIENT_TYPES.has(name)) return report(node, `imports the raw client type '${name}'`);
    }
    return undefined;
  };

  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const kind = rawKind(file, node.moduleSpecifier.text);
      if (kind) {
        const clause = node.importClause;
        const typeOnly = clause?.isTypeOnly ?? false;
        const names: { name: string; typeOnly: boolean }[] = [];
        let opaque = clause === undefined; // `import "x"`
        if (clause?.name) names.push({ name: clause.name.text, typeOnly });
        const bindings = clause?.namedBindings;
        if (bindings && ts.isNamespaceImport(bindings)) opaque = true;
        if (bindings && ts.isNamedImports(bindings)) {
          for (const element of bindings.elements) {
            names.push({ name: (element.propertyName ?? element.name).text, typeOnly: typeOnly || element.isTypeOnly });
          }
        }
        checkNames(node, kind, names, { typeOnly, opaque });
      }
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      const kind = rawKind(file, node.moduleSpecifier.text);
      if (kind) {
        const clause = node.exportClause;
        const names =
          clause && ts.isNamedExports(clause)
            ? clause.elements.map((element) => ({
                name: (element.propertyName ?? element.name).text,
                typeOnly: node.isTypeOnly || element.isTypeOnly,
              }))
            : [];
        checkNames(node, kind, names, { typeOnly: node.isTypeOnly, opaque: !clause || !ts.isNamedExports(clause) });
      }
    } else if (
      ts.isImportEqualsDeclaration(node) &&
      ts.isExternalModuleReference(node.moduleReference) &&
      ts.isStringLiteral(node.moduleReference.expression)
    ) {
      const kind = rawKind(file, node.moduleReference.expression.text);
      if (kind && !node.isTypeOnly) report(node, `requires ${describeKind(kind)}`);
    } else if (
      ts.isCallExpression(node) &&
      (node.expression.kind === ts.SyntaxKind.ImportKeyword ||
        (ts.isIdentifier(node.expression) && node.expression.text === "require")) &&
      node.arguments[0] &&
      ts.isStringLiteralLike(node.arguments[0])
    ) {
      // `import("x")` as an expression loads the module at run time; as a type
      // (`import("x").Todo`) it is an ImportTypeNode and never reaches here.
      const kind = rawKind(file, node.arguments[0].text);
      if (kind) report(node, `loads ${describeKind(kind)} at run time`);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
      const kind = rawKind(file, node.argument.literal.text);
      const name = node.qualifier && ts.isIdentifier(node.qualifier) ? node.qualifier.text : undefined;
      if (kind && name && RAW_CLIENT_TYPES.has(name)) report(node, `names the raw client type '${name}'`);
    }
    ts.forEachChild(node, visit);
  };
  visit(sourceFile);
  return found;
}

const isAllowed = (file: string) => ALLOWED.some((pattern) => pattern.test(file));

/** The violations of one file: its raw-client imports, unless it is allowed to have them. */
const violations = (file: string, source: string) => (isAllowed(file) ? [] : rawClientImports(file, source));

function sourceFiles(directory: string): string[] {
  const absolute = path.join(ROOT, directory);
  let entries: import("node:fs").Dirent[];
  try {
    entries = readdirSync(absolute, { withFileTypes: true });
  } catch {
    return []; // bench/ may not exist in every checkout
  }
  return entries.flatMap((entry) => {
    const relative = `${directory}/${entry.name}`;
    if (entry.isDirectory()) return relative === "src/generated" ? [] : sourceFiles(relative);
    return /\.(ts|mts|cts|tsx)$/.test(entry.name) && !entry.name.endsWith(".d.ts") ? [relative] : [];
  });
}

const format = (violation: Violation) =>
  `${violation.file}:${violation.line}: ${violation.reason}: ${violation.statement}`;

describe("the checker", () => {
  const RESOLVER = "src/modules/todo/resolvers.ts";
  const check = (source: string, file = RESOLVER) => violations(file, source).map((v) => v.reason);

  it("flags value imports of the generated client, naming the file and the import", () => {
    const found = violations(RESOLVER, `import { orNotFound } from "../../errors.js";\nimport { PrismaClient } from "../../generated/prisma/client.js";\n`);
    expect(found).toEqual([
      {
        file: RESOLVER,
        line: 2,
        statement: `import { PrismaClient } from "../../generated/prisma/client.js";`,
        reason: "imports the value 'PrismaClient' from the generated Prisma client",
      },
    ]);
    expect(format(found[0]!)).toContain("src/modules/todo/resolvers.ts:2");
    expect(check(`import { Prisma } from "../../generated/prisma/client.js";`)).toHaveLength(1);
    expect(check(`import { type Todo, Prisma } from "../../generated/prisma/client.js";`)).toHaveLength(1);
    expect(check(`import * as generated from "../../generated/prisma/client.js";`)).toHaveLength(1);
    expect(check(`import "../../generated/prisma/client.js";`)).toHaveLength(1);
    expect(check(`import { PrismaClient } from "../../generated/prisma/index.js";`)).toHaveLength(1);
    expect(check(`import { Todo } from "../../generated/prisma/models.js";`)).toHaveLength(1);
  });

  it("flags re-exports, require and dynamic import", () => {
    expect(check(`export { PrismaClient } from "../../generated/prisma/client.js";`)).toHaveLength(1);
    expect(check(`export * from "../../generated/prisma/client.js";`)).toHaveLength(1);
    expect(check(`const { PrismaClient } = await import("../../generated/prisma/client.js");`)).toHaveLength(1);
    expect(check(`const db = require("../../db/database.js");`)).toHaveLength(1);
    expect(check(`import db = require("../../db/database.js");`)).toHaveLength(1);
  });

  it("flags the database module and the drivers beneath it", () => {
    expect(check(`import { openDatabase } from "../../db/database.js";`)).toEqual([
      "imports the value 'openDatabase' from the database module",
    ]);
    expect(check(`import type { RawPrismaClient } from "../../db/database.js";`)).toEqual([
      "imports the raw client type 'RawPrismaClient'",
    ]);
    expect(check(`import { type RawPrismaClient } from "../../db/database.js";`)).toHaveLength(1);
    expect(check(`import type { PrismaClient } from "../../generated/prisma/client.js";`)).toHaveLength(1);
    expect(check(`let raw: import("../../generated/prisma/client.js").PrismaClient;`)).toHaveLength(1);
    expect(check(`import "../../db/database.js";`)).toHaveLength(1);
    expect(check(`import pg from "pg";`)).toHaveLength(1);
    expect(check(`import { PrismaClient } from "@prisma/client";`)).toHaveLength(1);
    expect(check(`import { PrismaPg } from "@prisma/adapter-pg";`)).toHaveLength(1);
    expect(check(`import { PGlite } from "@electric-sql/pglite";`)).toHaveLength(1);
  });

  it("allows type-only imports of rows, and unrelated modules", () => {
    expect(check(`import type { List, Todo } from "../../generated/prisma/client.js";`)).toEqual([]);
    expect(check(`import { type List, type Todo } from "../../generated/prisma/client.js";`)).toEqual([]);
    expect(check(`export type { Todo } from "../../generated/prisma/client.js";`)).toEqual([]);
    expect(check(`let todo: import("../../generated/prisma/client.js").Todo;`)).toEqual([]);
    expect(check(`import type { Database } from "../db/database.js";`, "src/http/health.ts")).toEqual([]);
    expect(check(`import { parsePageArgs } from "../../pagination/connection.js";\nimport pgFormat from "pg-format";`)).toEqual([]);
    // Paths are resolved, not matched as text.
    expect(check(`import { x } from "./generated/prisma/client.js";`)).toEqual([]);
    expect(check(`import { database } from "../../db/database-fixtures.js";`)).toEqual([]);
  });

  it("lets the allowed modules hold the raw client", () => {
    const source = `import { PrismaClient } from "../generated/prisma/client.js";`;
    expect(violations("src/policy/client.ts", source)).toEqual([]);
    expect(violations("src/db/database.ts", source)).toEqual([]);
    expect(violations("src/realtime/tailer.ts", `import type { RawPrismaClient } from "../db/database.js";`)).toEqual([]);
    expect(violations("src/server.ts", `import { openDatabase } from "./db/database.js";`)).toEqual([]);
    expect(violations("src/loaders/index.ts", source)).toHaveLength(1);
    expect(violations("src/modules/space/service.ts", `import { openDatabase } from "../../db/database.js";`)).toHaveLength(1);
    // A file merely named like an allowed one is not allowed.
    expect(violations("src/modules/authz/service.ts", `import { openDatabase } from "../../db/database.js";`)).toHaveLength(1);
    expect(violations("src/policyHelpers.ts", `import { PrismaClient } from "./generated/prisma/client.js";`)).toHaveLength(1);
  });
});

describe("the source tree", () => {
  const files = [...sourceFiles("src"), ...sourceFiles("prisma"), ...sourceFiles("bench"), "prisma.config.ts"];
  const scanned = files.map((file) => ({ file, imports: rawClientImports(file, readFileSync(path.join(ROOT, file), "utf8")) }));

  it("imports the raw Prisma client only from the allowed modules", () => {
    const offending = scanned.filter(({ file }) => !isAllowed(file)).flatMap(({ imports }) => imports);
    expect(offending.map(format), "raw Prisma client imported outside src/policy, src/db, src/modules/auth, src/realtime, src/webhooks, src/jobs, src/server.ts, src/context.ts (see the top of tests/unit/boundaries.test.ts)").toEqual([]);
  });

  it("sees the real uses in the allowed modules (the scan is not blind)", () => {
    expect(files.length).toBeGreaterThan(30);
    const holders = new Set(scanned.filter(({ imports }) => imports.length > 0).map(({ file }) => file));
    // The database module builds the client; the server opens it; the policy
    // client, auth and the realtime tailer hold it.
    for (const file of ["src/db/database.ts", "src/server.ts", "src/policy/client.ts", "src/modules/auth/service.ts", "src/context.ts"]) {
      expect(holders).toContain(file);
    }
  });
});

// The other way around the policy: the client filters what include/select
// pulls in by its relation table (src/policy/rules.ts), and passes a field it
// does not know through unfiltered. So the table must name every relation of
// every model of prisma/schema.prisma, with the right model and cardinality.
describe("the policy's relation table", () => {
  /** model name → relation field → { model, many }, read from the schema text. */
  function schemaRelations(schema: string) {
    const blocks = [...schema.matchAll(/^model\s+(\w+)\s*\{([^}]*)\}/gm)].map(([, name, body]) => ({ name: name!, body: body! }));
    const models = new Set(blocks.map((block) => block.name));
    const lowerFirst = (name: string) => name[0]!.toLowerCase() + name.slice(1);
    return Object.fromEntries(
      blocks.map(({ name, body }) => {
        const fields: Record<string, { model: string; many: boolean }> = {};
        for (const line of body.split("\n")) {
          const match = /^\s*(\w+)\s+(\w+)(\[\])?\??(\s|$)/.exec(line);
          if (match && models.has(match[2]!)) fields[match[1]!] = { model: lowerFirst(match[2]!), many: match[3] === "[]" };
        }
        return [lowerFirst(name), fields];
      }),
    );
  }

  it("names every relation of prisma/schema.prisma", () => {
    const fromSchema = schemaRelations(readFileSync(path.join(ROOT, "prisma/schema.prisma"), "utf8"));
    // The models the policy covers; any other model must have no relations
    // (the Event log), or it would need rules of its own.
    for (const [model, fields] of Object.entries(fromSchema)) {
      if (!(model in relations)) expect(fields, `model ${model} has relations but no policy rules`).toEqual({});
    }
    for (const model of Object.keys(relations)) {
      expect(relations[model as keyof typeof relations], `relations.${model} in src/policy/rules.ts`).toEqual(fromSchema[model]);
    }
    // The reader sees relations at all (a broken regex would see none).
    expect(Object.keys(fromSchema.list ?? {})).toEqual(["space", "owner", "todos"]);
  });
});
