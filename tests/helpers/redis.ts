// A redis-server of the test's own on a free port, keeping nothing on disk:
// it can crash (SIGKILL) and come back on the same port, or hang (SIGSTOP)
// with its connections open, which the machine's shared Redis must not.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import { freePort } from "./process.js";

export class PrivateRedis {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();

  private constructor(
    readonly port: number,
    private readonly dir: string,
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async start(): Promise<PrivateRedis> {
    const redis = new PrivateRedis(await freePort(), await mkdtemp(path.join(os.tmpdir(), "todo-redis-")));
    try {
      await redis.restart();
    } catch (error) {
      await redis.stop();
      throw error;
    }
    return redis;
  }

  /** Starts the server (again) on its port and resolves once it answers PING. */
  async restart(): Promise<void> {
    if (this.child) throw new Error("redis-server is already running");
    const child = spawn(
      "redis-server",
      ["--port", String(this.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", this.dir],
      { stdio: "ignore" },
    );
    this.child = child;
    // A missing binary is an "error" event (and no "exit"): an unhandled one
    // would take the test worker down instead of failing this call.
    let spawnError: Error | undefined;
    child.once("error", (error) => (spawnError = error));
    this.exited = new Promise<void>((resolve) => {
      child.once("exit", () => resolve());
      child.once("error", () => resolve());
    });
    const probe = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on("error", () => undefined);
    try {
      const deadline = Date.now() + 10_000;
      for (;;) {
        try {
          await probe.connect();
          await probe.ping();
          return;
        } catch (error) {
          if (spawnError) throw new Error(`redis-server could not start: ${spawnError.message}`);
          if (Date.now() > deadline || child.exitCode !== null) throw error;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      }
    } catch (error) {
      await this.kill(); // so a later restart() can try again
      throw error;
    } finally {
      probe.disconnect();
    }
  }

  /** SIGSTOP: connections stay open, but nothing answers. */
  pause(): void {
    this.child?.kill("SIGSTOP");
  }

  /** SIGCONT after pause(). */
  resume(): void {
    this.child?.kill("SIGCONT");
  }

  /** SIGKILL, as in a crash: every connection drops, and new ones are refused until restart(). */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = undefined;
    child.kill("SIGCONT"); // a paused process must run to die
    child.kill("SIGKILL");
    await this.exited;
  }

  /** kill() for good, and its directory removed. */
  async stop(): Promise<void> {
    await this.kill();
    await rm(this.dir, { recursive: true, force: true });
  }
}
