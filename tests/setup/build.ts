// Runs once before any test file: the suite starts servers the way operators
// do (`node dist/main.js`, see tests/helpers/process.ts), so dist/ must hold
// what src/ says now, not what the last `npm install` compiled. The build
// takes well under a second when the embedded database template is current.
import { execFileSync } from "node:child_process";
import path from "node:path";

export default function buildOnce(): void {
  const root = path.resolve(import.meta.dirname, "../..");
  execFileSync(process.execPath, [path.join(root, "scripts", "build.mjs")], { cwd: root, stdio: "inherit" });
}
