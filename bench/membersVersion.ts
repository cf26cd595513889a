// What keeping the memberships' version costs a write of many memberships:
// the version bumped once per statement (migration
// 20261204120000_space_members_version_per_statement) against once per row
// (the trigger of 20261204000000_space_members_version it replaced), on
// PostgreSQL, in one fresh database, interleaved.
//
//   npm run bench:members
//   BENCH_MEMBERS=1000,5000,10000   (memberships one statement inserts, then deletes, into one space)
//   BENCH_ROUNDS=3                  (interleaved rounds; the median is printed)
//   BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres
//
// Each sample runs in a transaction that is rolled back: the per-row trigger
// is put back inside it (PostgreSQL's DDL is transactional), so both ways
// write the same rows into the same tables. Also timed: 200 single-row
// inserts, the way addMember writes, to show the common case costs the same.
import { readFileSync } from "node:fs";
import path from "node:path";
import pg from "pg";
import { openDatabase } from "../src/db/database.js";
import { MIGRATIONS_DIR } from "../src/db/migrate.js";
import { boundedInt, createBenchDatabase } from "./support.js";

const SIZES = (process.env.BENCH_MEMBERS ?? "1000,5000,10000").split(",").map((value) => boundedInt(value.trim(), 0, 1, 100_000, "BENCH_MEMBERS"));
const ROUNDS = boundedInt(process.env.BENCH_ROUNDS, 3, 1, 50, "BENCH_ROUNDS");
const SINGLE_INSERTS = 200;
const USERS = Math.max(SINGLE_INSERTS, ...SIZES);

/** The per-row trigger as the earlier migration made it: its function and trigger, read from that file. */
function perRowTriggerSql(): string {
  const sql = readFileSync(path.join(MIGRATIONS_DIR, "20261204000000_space_members_version", "migration.sql"), "utf8");
  const from = sql.indexOf('CREATE FUNCTION "space_members_changed"');
  if (from < 0) throw new Error("the per-row trigger's migration no longer holds its function");
  return `DROP TRIGGER "SpaceMember_inserted" ON "SpaceMember";
    DROP TRIGGER "SpaceMember_deleted" ON "SpaceMember";
    DROP TRIGGER "SpaceMember_updated" ON "SpaceMember";
    ${sql.slice(from)}`;
}

type Way = "per statement" | "per row";
const WAYS: readonly Way[] = ["per statement", "per row"];

async function main() {
  const database = await createBenchDatabase("bench_members");
  // Migrated as the server migrates it; the samples below use a plain client.
  const migrating = await openDatabase({ kind: "postgres", url: database.url, poolMax: 1, connectTimeoutMs: 5_000, queryTimeoutMs: 5_000 });
  try {
    await migrating.migrate();
  } finally {
    await migrating.close();
  }
  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  try {
    await client.query(
      `INSERT INTO "User" (id, email, "passwordHash", "updatedAt")
       SELECT 'u' || i, 'u' || i || '@example.com', 'not-a-hash', now() FROM generate_series(0, $1::int - 1) AS i`,
      [USERS],
    );
    await client.query(`INSERT INTO "Space" (id, name, slug, "ownerId", "updatedAt") VALUES ('s1', 'Bench', 'bench', 'u0', now())`);
    const perRow = perRowTriggerSql();

    /** Runs `work` in a transaction rolled back afterwards, with the trigger `way` in place; returns its ms and the version bumps. */
    const sample = async (way: Way, work: () => Promise<void>) => {
      await client.query("BEGIN");
      try {
        if (way === "per row") await client.query(perRow);
        const before = await version();
        const started = performance.now();
        await work();
        const ms = performance.now() - started;
        return { ms, bumps: (await version()) - before };
      } finally {
        await client.query("ROLLBACK");
      }
    };
    const version = async () => Number((await client.query<{ v: string }>(`SELECT "membersVersion" AS v FROM "Space" WHERE id = 's1'`)).rows[0]!.v);
    const insertMany = (count: number) => async () => {
      await client.query(
        `INSERT INTO "SpaceMember" (id, "spaceId", "userId", "updatedAt")
         SELECT 'm' || i, 's1', 'u' || i, now() FROM generate_series(0, $1::int - 1) AS i`,
        [count],
      );
    };
    const insertThenDelete = (count: number) => async () => {
      await insertMany(count)();
      await client.query(`DELETE FROM "SpaceMember" WHERE "spaceId" = 's1'`);
    };
    const singleInserts = async () => {
      for (let index = 0; index < SINGLE_INSERTS; index++) {
        await client.query(`INSERT INTO "SpaceMember" (id, "spaceId", "userId", "updatedAt") VALUES ($1, 's1', $1, now())`, [`u${index}`]);
      }
    };

    const cases: { name: string; work: () => Promise<void> }[] = [
      ...SIZES.map((count) => ({ name: `insert ${count} in one statement`, work: insertMany(count) })),
      ...SIZES.map((count) => ({ name: `insert ${count}, then delete them in one statement`, work: insertThenDelete(count) })),
      { name: `${SINGLE_INSERTS} single-row inserts`, work: singleInserts },
    ];
    const figures = new Map<string, Record<Way, number[]>>(cases.map((c) => [c.name, { "per statement": [], "per row": [] }]));
    const bumps = new Map<string, Record<Way, number>>();
    for (const { work } of cases) for (const way of WAYS) await sample(way, work); // warm-up
    for (let round = 0; round < ROUNDS; round++) {
      for (const { name, work } of cases) {
        for (const way of round % 2 === 0 ? WAYS : [...WAYS].reverse()) {
          const { ms, bumps: counted } = await sample(way, work);
          figures.get(name)![way].push(ms);
          bumps.set(name, { ...(bumps.get(name) ?? { "per statement": 0, "per row": 0 }), [way]: counted });
        }
      }
    }
    const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
    console.log(`one space; ${ROUNDS} rounds interleaved, medians; each sample a transaction rolled back`);
    console.log("| statements | per statement ms | per row ms | per statement / per row | version bumps (per statement / per row) |");
    console.log("|---|---:|---:|---:|---:|");
    for (const { name } of cases) {
      const way = figures.get(name)!;
      const [statementMs, rowMs] = [median(way["per statement"]), median(way["per row"])];
      const counted = bumps.get(name)!;
      console.log(`| ${name} | ${statementMs.toFixed(1)} | ${rowMs.toFixed(1)} | ${(statementMs / rowMs).toFixed(2)}× | ${counted["per statement"]} / ${counted["per row"]} |`);
    }
  } finally {
    await client.end();
    await database.drop();
  }
}

await main();
