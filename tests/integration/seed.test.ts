// `npm run seed` as a developer runs it: twice on the same database (it must
// be idempotent), then the server on that database serves the demo data to
// the demo users with the password the seed printed.
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { startServer } from "../../src/server.js";
import { createTestDatabase, usePostgres } from "../helpers/database.js";
import { postGraphQL, TEST_JWT_SECRET } from "../helpers/server.js";

const ROOT = path.resolve(import.meta.dirname, "../..");
const run = promisify(execFile);
const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

/** The environment of a seed run on a database of its own (a fresh DATA_DIR, or PostgreSQL). */
async function seedEnv(): Promise<Record<string, string | undefined>> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), "todo-seed-"));
  cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
  const database = usePostgres ? await createTestDatabase() : undefined;
  if (database) cleanups.push(() => database.drop());
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    DATA_DIR: dataDir,
    ...(database?.url ? { DATABASE_URL: database.url } : {}),
  };
}

describe("npm run seed", () => {
  it("creates the demo data once, however often it runs, and the demo users can log in", async () => {
    const env = await seedEnv();

    const first = await run(process.execPath, ["--import", "tsx", "prisma/seed.ts"], { cwd: ROOT, env });
    const password = /the password (\S+)/.exec(first.stdout)?.[1];
    expect(password, first.stdout).toBeTruthy();
    expect(first.stdout).toContain("alice@example.com");
    await run(process.execPath, ["--import", "tsx", "prisma/seed.ts"], { cwd: ROOT, env });

    const config = loadConfig({ ...env, NODE_ENV: "test", HOST: "127.0.0.1", PORT: "0", JWT_SECRET: TEST_JWT_SECRET, LOG_LEVEL: "silent" });
    const server = await startServer(config);
    cleanups.push(() => server.close());

    const login = await postGraphQL<{ logIn: { token: string } }>(
      server.url,
      `mutation ($password: String!) { logIn(email: "alice@example.com", password: $password) { token } }`,
      { password },
    );
    const token = login.data?.logIn.token;
    expect(token, JSON.stringify(login.errors)).toBeTruthy();

    const spaces = await postGraphQL<{
      spaces: { totalCount: number; nodes: { slug: string; members: unknown[]; lists: { totalCount: number; nodes: { todos: { totalCount: number } }[] } }[] };
    }>(
      server.url,
      `{ spaces { totalCount nodes { slug members { id } lists { totalCount nodes { todos { totalCount } } } } } }`,
      {},
      token,
    );
    // Seeded twice, present once: one space, three members, three lists (one
    // private to Alice, who is asking), six todos.
    expect(spaces.data?.spaces.totalCount).toBe(1);
    const space = spaces.data!.spaces.nodes[0]!;
    expect(space.slug).toBe("demo");
    expect(space.members).toHaveLength(3);
    expect(space.lists.totalCount).toBe(3);
    expect(space.lists.nodes.reduce((sum, list) => sum + list.todos.totalCount, 0)).toBe(6);
  });

  it("says so when a demo email was registered before it ran, and leaves that account's password alone", async () => {
    const env = await seedEnv();
    const config = loadConfig({ ...env, NODE_ENV: "test", HOST: "127.0.0.1", PORT: "0", JWT_SECRET: TEST_JWT_SECRET, LOG_LEVEL: "silent" });
    const logInAsBob = async (url: string, password: string) =>
      (await postGraphQL<{ logIn: { token: string } }>(url, `mutation ($password: String!) { logIn(email: "bob@example.com", password: $password) { token } }`, { password })).data?.logIn.token;

    const before = await startServer(config);
    const signedUp = await postGraphQL(before.url, `mutation { signUp(input: { email: "bob@example.com", password: "bobs-own-password", name: "Bob" }) { token } }`);
    expect(signedUp.errors).toBeUndefined();
    await before.close();

    const seeded = await run(process.execPath, ["--import", "tsx", "prisma/seed.ts"], { cwd: ROOT, env });
    expect(seeded.stdout).toMatch(/bob@example\.com \(registered before the seed ran: its own password, unchanged\)/);
    expect(seeded.stdout).not.toMatch(/alice@example\.com.*registered before/);

    const after = await startServer(config);
    cleanups.push(() => after.close());
    expect(await logInAsBob(after.url, "bobs-own-password")).toBeTruthy();
  });
});
