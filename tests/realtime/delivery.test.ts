// todoChanged and spaceActivity against the real server: what is delivered,
// to whom, and what is refused at subscribe time.
import { describe, expect, it } from "vitest";
import { signUp, type TestServer } from "../helpers/server.js";
import {
  api,
  describeEvent,
  spaceWithMembers,
  untilLive,
  SPACE_ACTIVITY,
  TODO_CHANGED,
  type Api,
  type SpaceActivity,
  type Stream,
  type TodoChanged,
  realtimeServerPerFile,
} from "./helpers.js";

let server: TestServer;
const open = realtimeServerPerFile((started) => (server = started));

/** todoChanged(listId) for `token`, live once a probe todo's change arrives. */
async function watchList(token: string, listId: string, writer: Api, probeId: string) {
  const stream = open(token).subscribe<TodoChanged>(TODO_CHANGED, { listId });
  await untilLive(stream, () => writer.updateTodo(probeId, { title: "probe" }), (e) => e.todoChanged.todoId === probeId);
  return stream;
}

/** spaceActivity(spaceId) for `token`, live once a probe list's change arrives. */
async function watchSpace(token: string, spaceId: string, writer: Api, probeListId: string) {
  const stream = open(token).subscribe<SpaceActivity>(SPACE_ACTIVITY, { spaceId });
  await untilLive(stream, () => writer.updateList(probeListId, { title: "probe" }), (e) => e.spaceActivity.listId === probeListId);
  return stream;
}

const eventCount = () => server.database.prisma.event.count();

describe("todoChanged", () => {
  it("delivers CREATED, UPDATED and DELETED with the todo as it is after the change", async () => {
    const { spaceId, admin, members } = await spaceWithMembers(server, 1);
    const bob = members[0]!;
    const list = await admin.api.createList(spaceId, "Groceries");
    const probe = await admin.api.createTodo(list.id, "probe");
    const stream = await watchList(bob.token, list.id, admin.api, probe.id);
    const notProbe = (e: TodoChanged) => e.todoChanged.todoId !== probe.id;

    const milk = await admin.api.createTodo(list.id, "Milk");
    const [created] = (await stream.until((e) => e.todoChanged.todoId === milk.id)).filter(notProbe);
    expect(created?.todoChanged).toMatchObject({
      kind: "CREATED",
      todoId: milk.id,
      listId: list.id,
      todo: { id: milk.id, title: "Milk", completed: false, list: { id: list.id }, owner: { id: admin.id } },
    });

    await bob.api.updateTodo(milk.id, { completed: true, title: "Oat milk" });
    const [updated] = (await stream.until((e) => e.todoChanged.todoId === milk.id)).filter(notProbe);
    expect(updated?.todoChanged).toMatchObject({
      kind: "UPDATED",
      todoId: milk.id,
      todo: { title: "Oat milk", completed: true, owner: { id: admin.id } },
    });

    await admin.api.deleteTodo(milk.id);
    const [deleted] = (await stream.until((e) => e.todoChanged.todoId === milk.id)).filter(notProbe);
    expect(deleted?.todoChanged).toMatchObject({ kind: "DELETED", todoId: milk.id, listId: list.id, todo: null });

    const cursors = [created, updated, deleted].map((e) => e?.todoChanged.cursor);
    expect(new Set(cursors).size).toBe(3);
  });

  it("delivers only the changes of its own list", async () => {
    const { spaceId, admin } = await spaceWithMembers(server, 0);
    const watched = await admin.api.createList(spaceId, "Watched");
    const other = await admin.api.createList(spaceId, "Other");
    const probe = await admin.api.createTodo(watched.id, "probe");
    const stream = await watchList(admin.token, watched.id, admin.api, probe.id);

    const elsewhere = await admin.api.createTodo(other.id, "Elsewhere");
    await admin.api.updateList(watched.id, { title: "Watched, renamed" });
    const sentinel = await admin.api.createTodo(watched.id, "Sentinel");
    const events = await stream.until((e) => e.todoChanged.todoId === sentinel.id);
    expect(events.filter((e) => e.todoChanged.todoId !== probe.id).map((e) => e.todoChanged.todoId)).toEqual([sentinel.id]);
    expect(events.some((e) => e.todoChanged.todoId === elsewhere.id)).toBe(false);
  });

  it("refuses a list the caller may not read with NOT_FOUND", async () => {
    const { spaceId, admin, members } = await spaceWithMembers(server, 1);
    const bob = members[0]!;
    const secret = await admin.api.createList(spaceId, "Secret", true);
    const outsider = await signUp(server);
    const visible = await admin.api.createList(spaceId, "Visible");

    const cases: [string, string][] = [
      [bob.token, secret.id], // a private list of someone else
      [outsider.token, visible.id], // a list in a space the caller is not in
      [bob.token, "c00000000000000000000000"], // no such list
      [bob.token, "not an id"],
    ];
    for (const [token, listId] of cases) {
      const failure = await open(token).subscribe(TODO_CHANGED, { listId }).failure();
      expect(failure.code, listId).toBe("NOT_FOUND");
    }
  });

  it("answers an anonymous subscriber with UNAUTHENTICATED", async () => {
    const { spaceId, admin } = await spaceWithMembers(server, 0);
    const list = await admin.api.createList(spaceId, "Errands");
    expect((await open().subscribe(TODO_CHANGED, { listId: list.id }).failure()).code).toBe("UNAUTHENTICATED");
    expect((await open().subscribe(SPACE_ACTIVITY, { spaceId }).failure()).code).toBe("UNAUTHENTICATED");
  });

  it("publishes nothing for a denied or invalid mutation", async () => {
    const { spaceId, admin, members } = await spaceWithMembers(server, 1);
    const bob = members[0]!;
    const outsider = api(server, (await signUp(server)).token);
    const list = await admin.api.createList(spaceId, "Guarded");
    const todo = await admin.api.createTodo(list.id, "Keep me");
    const stream = await watchList(admin.token, list.id, admin.api, todo.id);
    const before = await eventCount();

    // All attempts run at once; allSettled handles every rejection as it comes.
    const attempts: [Promise<unknown>, string][] = [
      [outsider.updateTodo(todo.id, { title: "Not yours" }), "NOT_FOUND"],
      [outsider.deleteTodo(todo.id), "NOT_FOUND"],
      [outsider.createTodo(list.id, "Intruder"), "NOT_FOUND"],
      [bob.api.updateList(list.id, { title: "Not yours either" }), "FORBIDDEN"], // not the owner
      [bob.api.deleteList(list.id), "FORBIDDEN"],
      [admin.api.updateTodo(todo.id, { title: "" }), "BAD_USER_INPUT"],
      [admin.api.createList(spaceId, "x".repeat(101)), "BAD_USER_INPUT"],
    ];
    const outcomes = await Promise.allSettled(attempts.map(([attempt]) => attempt));
    outcomes.forEach((outcome, index) => {
      expect(outcome.status).toBe("rejected");
      expect(String((outcome as PromiseRejectedResult).reason)).toContain(`"code":"${attempts[index]![1]}"`);
    });
    expect(await eventCount()).toBe(before);

    const sentinel = await admin.api.createTodo(list.id, "Sentinel");
    const events = await stream.until((e) => e.todoChanged.todoId === sentinel.id);
    expect(events.filter((e) => e.todoChanged.todoId !== todo.id).map((e) => e.todoChanged.kind)).toEqual(["CREATED"]);
    // The probe todo itself saw no change from any of the attempts.
    expect(events.filter((e) => e.todoChanged.todoId === todo.id && e.todoChanged.todo?.title !== "probe")).toEqual([]);
  });
});

describe("spaceActivity", () => {
  it("delivers list and todo changes of the space, in commit order", async () => {
    const { spaceId, admin, members } = await spaceWithMembers(server, 1);
    const bob = members[0]!;
    const probeList = await admin.api.createList(spaceId, "Probe");
    const stream = await watchSpace(bob.token, spaceId, admin.api, probeList.id);

    const list = await bob.api.createList(spaceId, "Trip");
    const tent = await bob.api.createTodo(list.id, "Tent");
    await admin.api.updateTodo(tent.id, { completed: true });
    await bob.api.updateList(list.id, { title: "Trip to the lake" });
    await admin.api.deleteTodo(tent.id);
    await bob.api.deleteList(list.id);

    const events = (await stream.until((e) => e.spaceActivity.__typename === "ListEvent" && e.spaceActivity.kind === "DELETED" && e.spaceActivity.listId === list.id))
      .map((e) => e.spaceActivity)
      .filter((e) => e.listId !== probeList.id);
    expect(events.map(describeEvent)).toEqual([
      `list:CREATED:${list.id}`,
      `todo:CREATED:${tent.id}`,
      `todo:UPDATED:${tent.id}`,
      `list:UPDATED:${list.id}`,
      `todo:DELETED:${tent.id}`,
      `list:DELETED:${list.id}`,
    ]);
    expect(events[0]).toMatchObject({ __typename: "ListEvent", spaceId, list: { id: list.id, private: false } });
    expect(events[3]).toMatchObject({ list: { title: "Trip to the lake" } });
    expect(events[5]).toMatchObject({ __typename: "ListEvent", list: null });
    // A single space's events never come from a list elsewhere.
    expect(events.every((e) => e.__typename === "TodoEvent" || e.spaceId === spaceId)).toBe(true);
  });

  it("never delivers a private list's events to the other members, admins included", async () => {
    const { spaceId, admin, members } = await spaceWithMembers(server, 2);
    const [bob, carol] = members as [(typeof members)[0], (typeof members)[0]];
    const probeList = await admin.api.createList(spaceId, "Probe");
    const bobStream = await watchSpace(bob.token, spaceId, admin.api, probeList.id);
    const adminStream = await watchSpace(admin.token, spaceId, admin.api, probeList.id);
    const carolStream = await watchSpace(carol.token, spaceId, admin.api, probeList.id);

    // Carol's private list: not even the space's admin may read it.
    const diary = await carol.api.createList(spaceId, "Diary", true);
    const entry = await carol.api.createTodo(diary.id, "Entry");
    await carol.api.updateTodo(entry.id, { completed: true });
    await carol.api.deleteTodo(entry.id);
    await carol.api.updateList(diary.id, { title: "Dear diary" });
    await carol.api.deleteList(diary.id);
    const sentinel = await admin.api.createList(spaceId, "Sentinel");

    const isSentinel = (e: SpaceActivity) => e.spaceActivity.listId === sentinel.id;
    const seen = async (stream: Stream<SpaceActivity>) =>
      (await stream.until(isSentinel)).map((e) => e.spaceActivity).filter((e) => e.listId !== probeList.id);

    // The owner sees all of it: the events exist and were published.
    expect((await seen(carolStream)).map(describeEvent)).toEqual([
      `list:CREATED:${diary.id}`,
      `todo:CREATED:${entry.id}`,
      `todo:UPDATED:${entry.id}`,
      `todo:DELETED:${entry.id}`,
      `list:UPDATED:${diary.id}`,
      `list:DELETED:${diary.id}`,
      `list:CREATED:${sentinel.id}`,
    ]);
    expect((await seen(bobStream)).map(describeEvent)).toEqual([`list:CREATED:${sentinel.id}`]);
    expect((await seen(adminStream)).map(describeEvent)).toEqual([`list:CREATED:${sentinel.id}`]);
  });

  it("checks each event when it is delivered: a list turned private disappears, and comes back", async () => {
    const { spaceId, admin, members } = await spaceWithMembers(server, 1);
    const bob = members[0]!;
    const probeList = await admin.api.createList(spaceId, "Probe");
    const list = await admin.api.createList(spaceId, "Plans");
    const stream = await watchSpace(bob.token, spaceId, admin.api, probeList.id);

    await admin.api.updateList(list.id, { private: true });
    const hidden = await admin.api.createTodo(list.id, "Hidden");
    // Events are checked when they are delivered, so the list goes public
    // again only once bob's stream is past "Hidden": a probe published after
    // it reaches him only after every earlier event has been decided.
    await admin.api.updateList(probeList.id, { title: "probe after Hidden" });
    const whilePrivate = await stream.until((e) => "list" in e.spaceActivity && e.spaceActivity.list?.title === "probe after Hidden");
    await admin.api.updateList(list.id, { private: false, title: "Plans, shared" });
    const shown = await admin.api.createTodo(list.id, "Shown");

    const events = (await stream.until((e) => e.spaceActivity.todoId === shown.id))
      .map((e) => e.spaceActivity)
      .filter((e) => e.listId !== probeList.id);
    expect(whilePrivate.map((e) => e.spaceActivity).filter((e) => e.listId !== probeList.id)).toEqual([]);
    expect(events.map(describeEvent)).toEqual([`list:UPDATED:${list.id}`, `todo:CREATED:${shown.id}`]);
    expect(events[0]).toMatchObject({ list: { private: false, title: "Plans, shared" } });
    expect(events.some((e) => e.todoId === hidden.id)).toBe(false);
  });

  it("refuses a space the caller is not in with NOT_FOUND, and a malformed cursor with BAD_USER_INPUT", async () => {
    const { spaceId } = await spaceWithMembers(server, 0);
    const outsider = await signUp(server);
    expect((await open(outsider.token).subscribe(SPACE_ACTIVITY, { spaceId }).failure()).code).toBe("NOT_FOUND");
    expect((await open(outsider.token).subscribe(SPACE_ACTIVITY, { spaceId: "nope" }).failure()).code).toBe("NOT_FOUND");
    const own = await api(server, outsider.token).createSpace();
    const malformed = await open(outsider.token).subscribe(SPACE_ACTIVITY, { spaceId: own, after: "garbage" }).failure();
    expect(malformed).toMatchObject({ code: "BAD_USER_INPUT", message: "That cursor is not valid." });
  });
});

describe("a member removed from the space", () => {
  it("receives nothing more from it on any open subscription, and cannot subscribe again", async () => {
    const { spaceId, admin, members } = await spaceWithMembers(server, 2);
    const [bob, carol] = members as [(typeof members)[0], (typeof members)[0]];
    const probeList = await admin.api.createList(spaceId, "Probe");
    const list = await admin.api.createList(spaceId, "Shared");
    const probeTodo = await admin.api.createTodo(list.id, "probe");
    const bobSpace = await watchSpace(bob.token, spaceId, admin.api, probeList.id);
    const bobList = await watchList(bob.token, list.id, admin.api, probeTodo.id);
    const carolSpace = await watchSpace(carol.token, spaceId, admin.api, probeList.id);
    const notProbe = (e: { listId: string; todoId?: string }) => e.listId !== probeList.id && e.todoId !== probeTodo.id;

    const before = await admin.api.createTodo(list.id, "Before removal");
    await bobSpace.until((e) => e.spaceActivity.todoId === before.id);
    await bobList.until((e) => e.todoChanged.todoId === before.id);

    await admin.api.removeMember(bob.membershipId);
    const during = await admin.api.createTodo(list.id, "While removed");
    await admin.api.updateList(list.id, { title: "Shared, renamed" });
    // Carol, still a member, gets both: they were published.
    await carolSpace.until((e) => e.spaceActivity.listId === list.id && e.spaceActivity.kind === "UPDATED");
    expect((await open(bob.token).subscribe(SPACE_ACTIVITY, { spaceId }).failure()).code).toBe("NOT_FOUND");

    // Bob comes back. Each subscription delivers in order, so anything it had
    // let through while he was out would arrive before the next event.
    await admin.api.addMember(spaceId, bob.email);
    const after = await admin.api.createTodo(list.id, "After return");
    const spaceEvents = (await bobSpace.until((e) => e.spaceActivity.todoId === after.id)).map((e) => e.spaceActivity).filter(notProbe);
    const listEvents = (await bobList.until((e) => e.todoChanged.todoId === after.id)).map((e) => e.todoChanged).filter(notProbe);
    expect(spaceEvents.map(describeEvent)).toEqual([`todo:CREATED:${after.id}`]);
    expect(listEvents.map((e) => `${e.kind}:${e.todoId}`)).toEqual([`CREATED:${after.id}`]);
    expect([...spaceEvents, ...listEvents].some((e) => e.todoId === during.id)).toBe(false);
  });

  it("receives nothing more about lists of their own either, though the list rule still lets an owner read them", async () => {
    const { spaceId, admin, members } = await spaceWithMembers(server, 1);
    const carol = members[0]!;
    const probeList = await admin.api.createList(spaceId, "Probe");
    const own = await carol.api.createList(spaceId, "Carol's");
    const probeTodo = await carol.api.createTodo(own.id, "probe");
    const carolSpace = await watchSpace(carol.token, spaceId, admin.api, probeList.id);
    const carolList = await watchList(carol.token, own.id, carol.api, probeTodo.id);

    await admin.api.removeMember(carol.membershipId);
    const during = await admin.api.createTodo(own.id, "While removed");
    await admin.api.updateList(own.id, { title: "Carol's, renamed" });
    await admin.api.addMember(spaceId, carol.email);
    const after = await admin.api.createTodo(own.id, "After return");

    const spaceEvents = (await carolSpace.until((e) => e.spaceActivity.todoId === after.id)).map((e) => e.spaceActivity);
    const listEvents = (await carolList.until((e) => e.todoChanged.todoId === after.id)).map((e) => e.todoChanged);
    expect(spaceEvents.filter((e) => e.listId !== probeList.id && e.todoId !== probeTodo.id).map(describeEvent)).toEqual([
      `todo:CREATED:${after.id}`,
    ]);
    expect(listEvents.filter((e) => e.todoId !== probeTodo.id).map((e) => `${e.kind}:${e.todoId}`)).toEqual([`CREATED:${after.id}`]);
    expect(listEvents.some((e) => e.todoId === during.id)).toBe(false);
  });
});
