// The baseline server of bench:read as a process of its own (so that its CPU
// can be read from /proc apart from the real server's): bench/baseline.ts on
// the database DATABASE_URL names, on PORT. Prints "ready" once listening.
import { loadConfig } from "../src/config.js";
import { openDatabase } from "../src/db/database.js";
import { startBaselineServer } from "./baseline.js";

const config = loadConfig();
const database = await openDatabase(config.database);
const server = await startBaselineServer(config, database.prisma, config.jwt.secret!, config.port);
process.stdout.write("ready\n");
process.once("SIGTERM", () => {
  void server
    .close()
    .then(() => database.close())
    .finally(() => process.exit(0));
});
