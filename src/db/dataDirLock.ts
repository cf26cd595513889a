// PGlite is one process's database: a second process opening the same data
// directory (a second server, or `npm run seed` while the server runs) would
// write to it at the same time and corrupt it. A lock file next to the data,
// holding the owner's pid, keeps the second one out with a clear message.
//
// The file appears whole or not at all (written aside, then hard-linked into
// place), so no one reads it half-written. A lock whose process no longer
// runs (a crash, a kill -9, a restarted container that reuses our pid) is
// taken over. The check sees processes of this machine and pid namespace
// only: two containers sharing one volume cannot see each other's pids.
import { link, readFile, rename, rm, writeFile } from "node:fs/promises";

export class DataDirInUseError extends Error {}

/** Lock files this process holds or is taking (its own pid in any other is stale). */
const held = new Set<string>();

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it runs, as another user.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

const ownerOf = async (lockFile: string) => (await readFile(lockFile, "utf8").catch(() => "")).trim();

/** Creates the lock file whole, or fails with EEXIST if there is one. */
async function create(lockFile: string): Promise<void> {
  const aside = `${lockFile}.${process.pid}.${Date.now()}`;
  await writeFile(aside, String(process.pid));
  try {
    await link(aside, lockFile);
  } finally {
    await rm(aside, { force: true });
  }
}

/** Takes the lock for `dataDir`; the function it returns gives it back. */
export async function lockDataDir(dataDir: string): Promise<() => Promise<void>> {
  const lockFile = `${dataDir}.lock`;
  const mine = String(process.pid);
  if (held.has(lockFile)) throw inUse(dataDir, process.pid, lockFile);
  held.add(lockFile); // from now on, before any await: one taker per process
  try {
    await take(lockFile);
  } catch (error) {
    held.delete(lockFile);
    throw error;
  }
  return async () => {
    held.delete(lockFile);
    if ((await ownerOf(lockFile)) === mine) await rm(lockFile, { force: true });
  };
}

const inUse = (dataDir: string, pid: number, lockFile: string) =>
  new DataDirInUseError(
    `The embedded database in ${dataDir} is in use by process ${pid} (a running server?). ` +
      `Stop it first: the embedded database serves one process at a time (lock: ${lockFile}).`,
  );

async function take(lockFile: string): Promise<void> {
  const dataDir = lockFile.slice(0, -".lock".length);
  for (let attempt = 0; ; attempt++) {
    try {
      await create(lockFile);
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST" || attempt >= 5) throw error;
    }
    const owner = await ownerOf(lockFile);
    const pid = Number(owner);
    // Our own pid here is a lock from an earlier process that had it (held
    // rules out this one): a restarted container often gets the same pid.
    const stale = !(Number.isInteger(pid) && pid > 0) || pid === process.pid || !isRunning(pid);
    if (!stale) throw inUse(dataDir, pid, lockFile);
    // Move the stale lock aside, and make sure it was the one judged stale:
    // another starter may have replaced it meanwhile, and that one stays.
    const moved = `${lockFile}.stale.${process.pid}`;
    try {
      await rename(lockFile, moved);
    } catch {
      continue; // gone already: try to create it again
    }
    if ((await ownerOf(moved)) !== owner) {
      await link(moved, lockFile).catch(() => undefined);
    }
    await rm(moved, { force: true });
  }
}
