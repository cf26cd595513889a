// PGlite is one process's database: a second process opening the same data
// directory (a second server, or `npm run seed` while the server runs) would
// write to it at the same time and corrupt it. A lock file next to the data,
// holding the owner's pid, keeps the second one out with a clear message. A
// lock left by a process that no longer runs (a crash, a kill -9) is taken over.
import { readFile, rm, writeFile } from "node:fs/promises";

export class DataDirInUseError extends Error {}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it runs, as another user.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Takes the lock for `dataDir`; the function it returns gives it back. */
export async function lockDataDir(dataDir: string): Promise<() => Promise<void>> {
  const lockFile = `${dataDir}.lock`;
  const mine = String(process.pid);
  try {
    await writeFile(lockFile, mine, { flag: "wx" });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    const owner = Number((await readFile(lockFile, "utf8").catch(() => "")).trim());
    if (Number.isInteger(owner) && owner > 0 && isRunning(owner)) {
      throw new DataDirInUseError(
        `The embedded database in ${dataDir} is in use by process ${owner} (a running server?). ` +
          "Stop it first: the embedded database serves one process at a time.",
      );
    }
    await writeFile(lockFile, mine); // left behind by a process that is gone
  }
  return async () => {
    if ((await readFile(lockFile, "utf8").catch(() => "")).trim() === mine) await rm(lockFile, { force: true });
  };
}
