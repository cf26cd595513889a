// How the check when a subscription starts (src/realtime/subscribeCheck.ts)
// groups its questions: the checks asked within one turn of the event loop
// become one decision per space or list, each subscriber answered from it;
// a failed decision fails only its own group's checks. Its answers against
// the policy client, on a real database, are compared in
// tests/realtime/audience.test.ts; here the decisions come from a table, to
// see which were asked for.
import { setImmediate as nextTurn } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import type { GraphQLContext } from "../../src/context.js";
import { createSubscribeCheck, type SubscribeTarget } from "../../src/realtime/subscribeCheck.js";

/** The check reads nothing of a context but its viewer, when batched. */
const contextOf = (viewerId: string | undefined) => ({ viewer: viewerId === undefined ? null : { id: viewerId } }) as unknown as GraphQLContext;

/** Decisions from a table (target key → readers), each recorded with the viewers it was asked about. */
function tableDecisions(readers: Record<string, string[]>, failing: Set<string> = new Set()) {
  const asked: { target: string; viewers: string[] }[] = [];
  const decide = async (model: SubscribeTarget["model"], id: string, viewers: ReadonlySet<string>) => {
    const target = `${model} ${id}`;
    asked.push({ target, viewers: [...viewers].sort() });
    await nextTurn();
    if (failing.has(target)) throw new Error(`the database is away (${target})`);
    return new Set([...viewers].filter((viewer) => readers[target]?.includes(viewer)));
  };
  return { asked, decide };
}

const space = (id: string): SubscribeTarget => ({ model: "space", id });
const list = (id: string): SubscribeTarget => ({ model: "list", id });

describe("the check when a subscription starts", () => {
  it("decides the checks of one turn once per space or list, and answers each subscriber from it", async () => {
    const members = Array.from({ length: 60 }, (_, i) => `member${i}`);
    const { asked, decide } = tableDecisions({ "space s1": members, "space s2": ["member0"], "list l1": ["member1", "member2"] });
    const check = createSubscribeCheck(decide);
    const questions: [SubscribeTarget, string, boolean][] = [
      ...members.map((viewer): [SubscribeTarget, string, boolean] => [space("s1"), viewer, true]),
      [space("s1"), "outsider", false],
      [space("s2"), "member0", true],
      [space("s2"), "member1", false],
      [list("l1"), "member2", true],
      [list("l1"), "member3", false],
      // A space and a list may share an id: they are different questions.
      [list("s1"), "member0", false],
    ];
    const answers = await Promise.all(questions.map(([target, viewer]) => check.readable(target, contextOf(viewer))));
    expect(answers).toEqual(questions.map(([, , expected]) => expected));
    expect(asked.map((a) => a.target).sort()).toEqual(["list l1", "list s1", "space s1", "space s2"]);
    expect(asked.find((a) => a.target === "space s1")!.viewers).toEqual([...members, "outsider"].sort());
  });

  it("asks again in a later turn: nothing is kept from one decision to the next", async () => {
    const readers: Record<string, string[]> = { "space s1": ["ada"] };
    const { asked, decide } = tableDecisions(readers);
    const check = createSubscribeCheck(decide);
    expect(await check.readable(space("s1"), contextOf("ada"))).toBe(true);
    readers["space s1"] = []; // removed from the space meanwhile
    expect(await check.readable(space("s1"), contextOf("ada"))).toBe(false);
    expect(asked).toHaveLength(2);
  });

  it("answers every check of a viewer who asks twice at once", async () => {
    const { asked, decide } = tableDecisions({ "space s1": ["ada"] });
    const check = createSubscribeCheck(decide);
    const answers = await Promise.all([check.readable(space("s1"), contextOf("ada")), check.readable(space("s1"), contextOf("ada"))]);
    expect(answers).toEqual([true, true]);
    expect(asked).toEqual([{ target: "space s1", viewers: ["ada"] }]);
  });

  it("fails only the checks whose decision failed", async () => {
    const { decide } = tableDecisions({ "space s1": ["ada"], "space s2": ["ada"] }, new Set(["space s2"]));
    const check = createSubscribeCheck(decide);
    const [first, second] = await Promise.allSettled([check.readable(space("s1"), contextOf("ada")), check.readable(space("s2"), contextOf("ada"))]);
    expect(first).toEqual({ status: "fulfilled", value: true });
    expect(second.status).toBe("rejected");
    expect(String((second as PromiseRejectedResult).reason)).toContain("the database is away (space s2)");
  });

  it("refuses a context without a viewer without asking", async () => {
    const { asked, decide } = tableDecisions({ "space s1": ["ada"] });
    const check = createSubscribeCheck(decide);
    expect(await check.readable(space("s1"), contextOf(undefined))).toBe(false);
    await nextTurn();
    expect(asked).toEqual([]);
  });
});
