// Demo data for exploring the API: three users, one shared space, a public
// and a private list with todos. Idempotent: running it again finds what it
// made before (users by email, the space by slug, lists and todos by title)
// and creates only what is missing. Uses the same database selection as the
// server (DATABASE_URL, or the embedded database in DATA_DIR); stop a server
// running on the embedded database first, as PGlite serves one process.
import { loadConfig } from "../src/config.js";
import { openDatabase, type RawPrismaClient } from "../src/db/database.js";
import { hashPassword, verifyPassword } from "../src/modules/auth/passwords.js";

const DEMO_PASSWORD = "demo-password-1";

const USERS = [
  { email: "alice@example.com", name: "Alice" },
  { email: "bob@example.com", name: "Bob" },
  { email: "carol@example.com", name: "Carol" },
] as const;

const SPACE = { slug: "demo", name: "Demo space" };

const LISTS = [
  { title: "Groceries", private: false, owner: "alice@example.com", todos: ["Milk", "Bread", "Coffee beans"] },
  { title: "Trip planning", private: false, owner: "bob@example.com", todos: ["Book train", "Pack tent"] },
  { title: "Alice's secret list", private: true, owner: "alice@example.com", todos: ["Birthday present for Bob"] },
] as const;

/** Emails of demo users that were already registered with another password (left unchanged). */
async function seed(prisma: RawPrismaClient): Promise<Set<string>> {
  const passwordHash = await hashPassword(DEMO_PASSWORD);
  const userIds = new Map<string, string>();
  const otherPassword = new Set<string>();
  for (const user of USERS) {
    const row = await prisma.user.upsert({
      where: { email: user.email },
      update: {},
      create: { ...user, passwordHash },
    });
    userIds.set(user.email, row.id);
    // Someone signed up with this email before the seed ran: their password
    // is theirs, and the printed one would not work for them.
    if (row.passwordHash !== passwordHash && !(await verifyPassword(row.passwordHash, DEMO_PASSWORD))) {
      otherPassword.add(user.email);
    }
  }
  const idOf = (email: string) => userIds.get(email) as string;

  const alice = idOf("alice@example.com");
  const space = await prisma.space.upsert({
    where: { slug: SPACE.slug },
    update: {},
    create: { ...SPACE, ownerId: alice },
  });
  for (const user of USERS) {
    await prisma.spaceMember.upsert({
      where: { spaceId_userId: { spaceId: space.id, userId: idOf(user.email) } },
      update: {},
      create: { spaceId: space.id, userId: idOf(user.email), role: user.email === "alice@example.com" ? "ADMIN" : "USER" },
    });
  }

  for (const list of LISTS) {
    const ownerId = idOf(list.owner);
    const row =
      (await prisma.list.findFirst({ where: { spaceId: space.id, title: list.title } })) ??
      (await prisma.list.create({ data: { spaceId: space.id, title: list.title, private: list.private, ownerId } }));
    for (const [index, title] of list.todos.entries()) {
      const exists = await prisma.todo.findFirst({ where: { listId: row.id, title } });
      if (exists) continue;
      // The first todo of each list starts completed, to show both states.
      await prisma.todo.create({
        data: { listId: row.id, title, ownerId, completedAt: index === 0 ? new Date() : null },
      });
    }
  }
  return otherPassword;
}

async function main(): Promise<void> {
  const config = loadConfig();
  const database = await openDatabase(config.database);
  let otherPassword: Set<string>;
  try {
    await database.migrate();
    otherPassword = await seed(database.prisma);
  } finally {
    await database.close();
  }
  process.stdout.write(
    [
      `Seeded the ${database.kind === "pglite" ? `embedded database in ${config.dataDir}` : "PostgreSQL database"}.`,
      `Space: "${SPACE.name}" (slug ${SPACE.slug}). Demo users, with the password ${DEMO_PASSWORD} unless noted:`,
      ...USERS.map(
        (user) =>
          `  ${user.email}${user.email === "alice@example.com" ? " (space admin)" : ""}${
            otherPassword.has(user.email) ? " (registered before the seed ran: its own password, unchanged)" : ""
          }`,
      ),
      "",
    ].join("\n"),
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`Seeding failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
