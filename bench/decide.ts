// What deciding one event for many viewers costs in memory, once its row is
// loaded: allowedAmong (src/policy/compiledRules.ts) over the todo rule the
// realtime fan-out compiles (src/realtime/audience.ts), as one event after
// another decides it, with the space's memberships kept between events
// (src/realtime/relationCache.ts: the same array each time).
//
//   npm run bench:decide
//   BENCH_VIEWERS=1000 BENCH_DECISIONS=2000
//
// Three rows: a public list whose owner is a subscribed member (the owner's
// test and the members' are joined without a copy, and the sets made for the
// first event come back for the next ones); the same list owned by a member
// who is not subscribed, so whose membership is not loaded (a writer: the
// owner is nobody among the candidates, and the members' set comes back as
// it is); and the same list owned by someone who has left the space but is
// still subscribed (the owner still reads it, so the union is a new set per
// event). Printed: µs per decision, and the ratios to the first, measured in
// the same run, interleaved.
import { allOf, allowedAmong, compileReadRule, compileWhere, sentinelViewer } from "../src/policy/compiledRules.js";
import { rules } from "../src/policy/rules.js";
import { boundedInt } from "./support.js";

const VIEWERS = boundedInt(process.env.BENCH_VIEWERS, 1_000, 1, 100_000, "BENCH_VIEWERS");
const DECISIONS = boundedInt(process.env.BENCH_DECISIONS, 2_000, 1, 1_000_000, "BENCH_DECISIONS");

const members = Array.from({ length: VIEWERS }, (_, index) => ({ id: `m${index}`, userId: `u${index}`, role: "USER", spaceId: "s1" }));
const candidates = new Set([...members.map((member) => member.userId), "former"]);
const rule = allOf(compileReadRule("todo"), compileWhere("todo", { list: { space: rules.space.read(sentinelViewer) } }));
// Each event loads its row afresh; the memberships are the kept array.
const rowOwnedBy = (ownerId: string) => ({
  id: "t1",
  listId: "l1",
  ownerId,
  list: { id: "l1", ownerId, private: false, spaceId: "s1", space: { id: "s1", membersVersion: 1n, members } },
});
const cases = { "owner a member": "u0", "owner not subscribed": "writer", "owner has left": "former" } as const;

const timePer = (ownerId: string, decisions: number) => {
  let allowed = 0;
  const started = performance.now();
  for (let index = 0; index < decisions; index++) allowed += allowedAmong(rule, rowOwnedBy(ownerId), candidates).size;
  const microseconds = ((performance.now() - started) * 1000) / decisions;
  if (allowed === 0) throw new Error("nobody allowed: the benchmark is not deciding what it should");
  return microseconds;
};

for (const ownerId of Object.values(cases)) timePer(ownerId, Math.min(DECISIONS, 200));
const figures: Record<string, number[]> = Object.fromEntries(Object.keys(cases).map((name) => [name, []]));
for (let round = 0; round < 5; round++) {
  for (const [name, ownerId] of Object.entries(cases)) figures[name]!.push(timePer(ownerId, DECISIONS));
}
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
console.log(`${VIEWERS} viewers, ${DECISIONS} decisions per round, 5 rounds interleaved; µs per decision (median):`);
for (const [name, values] of Object.entries(figures)) console.log(`  ${name.padEnd(20)} ${median(values).toFixed(1)}`);
const ratio = (name: string) => (median(figures[name]!) / median(figures["owner a member"]!)).toFixed(1);
console.log(`  ratios to owner a member: owner not subscribed ${ratio("owner not subscribed")}×, owner has left ${ratio("owner has left")}×`);
