// Delivery to many subscribers at once: each live event is decided for all
// its subscribers together (src/realtime/audience.ts) and executed once for
// every subscription whose result cannot differ (src/realtime/execution.ts).
// These tests hold that path to the same rules as the per-viewer one:
// revocation mid-fan-out, subscriptions completed mid-fan-out, the frames it
// writes itself, results that depend on the viewer, and a client that stops
// reading.
import { describe, expect, it } from "vitest";
import WebSocket from "ws";
import type { TestServer } from "../helpers/server.js";
import { signUp } from "../helpers/server.js";
import { api, logBetween, newestEvent, realtimeServerPerFile, spaceWithMembers, testCursors, untilLive, type Stream } from "./helpers.js";

let server: TestServer;
const open = realtimeServerPerFile((started) => (server = started), {
  // The slow consumer below: a subscription with more than this waiting closes its socket.
  WS_MAX_PENDING_EVENTS: "20",
  LIMIT_MAX_ALIASES: "0",
  LIMIT_MAX_TOKENS: "0",
  LIMIT_MAX_COST: "0",
});

const TITLES = `subscription ($spaceId: ID!, $after: String) {
  spaceActivity(spaceId: $spaceId, after: $after) { ... on TodoEvent { kind cursor todo { id title } } }
}`;
type TitleEvent = { spaceActivity: { kind?: string; cursor?: string; todo?: { id: string; title: string } | null } };
const titleOf = (item: TitleEvent) => item.spaceActivity.todo?.title;

/** Writes probes until every stream has delivered one: all of them are registered. */
async function untilAllLive(streams: Stream<TitleEvent>[], write: (title: string) => Promise<unknown>) {
  for (let attempt = 1; attempt <= 20; attempt++) {
    const probe = `probe-${attempt}`;
    await write(probe);
    const deadline = Date.now() + 500 * attempt;
    while (Date.now() < deadline && !streams.every((stream) => stream.received.some((item) => titleOf(item) === probe))) {
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    if (streams.every((stream) => stream.received.some((item) => titleOf(item) === probe))) return;
  }
  throw new Error("not every subscription delivered a probe");
}


describe("a member removed while a 1,000-subscription fan-out is in flight", () => {
  it("receives nothing committed after the removal, while everyone else receives everything, in order", async () => {
    const MEMBERS = 20;
    const PER_MEMBER = 50; // 20 × 50 = 1,000 subscriptions, one socket per member
    const { spaceId, admin, members } = await spaceWithMembers(server, MEMBERS);
    const list = await admin.api.createList(spaceId, "Busy list");
    const todo = await admin.api.createTodo(list.id, "start");
    const streamsOf = members.map((member) => {
      const connection = open(member.token);
      return Array.from({ length: PER_MEMBER }, () => connection.subscribe<TitleEvent>(TITLES, { spaceId }));
    });
    const all = streamsOf.flat();
    expect(all).toHaveLength(1000);
    await untilAllLive(all, (title) => admin.api.updateTodo(todo.id, { title }));

    // Events are told apart by their cursors: an UPDATED event carries the
    // todo as it is when delivered, so its title may be a later write's.
    const prisma = server.database.prisma;
    const cursorsBetween = async (fromId: bigint, toId: bigint) =>
      (await logBetween(prisma, { spaceId }, fromId, toId)).map((event) => testCursors.encode(event.id));
    const live = await newestEvent(prisma, { spaceId });

    const victim = members[7]!;
    for (let index = 0; index < 10; index++) await admin.api.updateTodo(todo.id, { title: `before-${index}` });
    const lastBefore = await newestEvent(prisma, { spaceId });
    // The earlier writes are still being delivered to 1,000 subscriptions.
    await admin.api.removeMember(victim.membershipId);
    for (let index = 0; index < 10; index++) await admin.api.updateTodo(todo.id, { title: `after-${index}` });
    const newest = await newestEvent(prisma, { spaceId });
    const before = await cursorsBetween(live.id, lastBefore.id);
    const after = await cursorsBetween(lastBefore.id, newest.id);
    expect([before.length, after.length]).toEqual([10, 10]);
    const written = new Set([...before, ...after]);
    // What a stream received of these writes (late probes left out), in the order received.
    const writesReceived = (stream: Stream<TitleEvent>) =>
      stream.received.map((item) => item.spaceActivity.cursor).filter((cursor): cursor is string => cursor !== undefined && written.has(cursor));

    const others = streamsOf.filter((_, index) => index !== 7).flat();
    await Promise.all(others.map((stream) => stream.until((item) => item.spaceActivity.cursor === after.at(-1), "the last write", 30_000)));
    for (const stream of others) expect(writesReceived(stream)).toEqual([...before, ...after]);
    // The victim's streams have had as long as everyone else's: nothing after the removal.
    await new Promise((resolve) => setTimeout(resolve, 300));
    for (const stream of streamsOf[7]!) {
      const received = writesReceived(stream);
      expect(received.filter((cursor) => after.includes(cursor))).toEqual([]);
      // What came before the removal arrives whole and in order, or stops at the removal.
      expect(before.slice(0, received.length)).toEqual(received);
    }
  }, 120_000);
});

describe("subscriptions completed while a 1,000-subscription fan-out is in flight", () => {
  it("are sent no `next` once the server has taken their `complete`", async () => {
    const MEMBERS = 19;
    const PER_MEMBER = 50; // with the 50 of the raw socket below, 1,000 subscriptions
    const { spaceId, admin, members } = await spaceWithMembers(server, MEMBERS + 1);
    const list = await admin.api.createList(spaceId, "Busy list");
    const todo = await admin.api.createTodo(list.id, "start");
    const others = members.slice(1).flatMap((member) => {
      const connection = open(member.token);
      return Array.from({ length: PER_MEMBER }, () => connection.subscribe<TitleEvent>(TITLES, { spaceId }));
    });

    // A raw graphql-ws socket: what arrives after the server has taken the
    // completes is told apart by a ping sent right behind them. The server
    // handles a socket's messages in order and a complete ends the
    // subscription at once, so the pong is written after anything sent before
    // the completes took effect, and TCP keeps that order.
    const socket = new WebSocket(server.wsUrl, "graphql-transport-ws");
    const ids = Array.from({ length: PER_MEMBER }, (_, index) => `s${index}`);
    const nexts: { id: string; title: string | undefined; afterPong: boolean }[] = [];
    let ponged = false;
    let onFirstWrite: (() => void) | undefined;
    socket.on("message", (data) => {
      const message = JSON.parse(String(data)) as { id?: string; type: string; payload?: { data?: TitleEvent } };
      if (message.type === "pong") ponged = true;
      if (message.type !== "next" || !message.id) return;
      const title = message.payload?.data ? titleOf(message.payload.data) : undefined;
      nexts.push({ id: message.id, title, afterPong: ponged });
      if (title?.startsWith("burst-")) onFirstWrite?.();
    });
    await new Promise((resolve) => socket.once("open", resolve));
    socket.send(JSON.stringify({ type: "connection_init", payload: { authorization: `Bearer ${members[0]!.token}` } }));
    await new Promise((resolve) => socket.once("message", resolve)); // connection_ack
    for (const id of ids) socket.send(JSON.stringify({ id, type: "subscribe", payload: { query: TITLES, variables: { spaceId } } }));
    const rawLive = (probe: string) => ids.every((id) => nexts.some((next) => next.id === id && next.title === probe));
    for (let attempt = 1; ; attempt++) {
      if (attempt > 20) throw new Error("the raw socket's subscriptions never went live");
      await admin.api.updateTodo(todo.id, { title: `probe-${attempt}` });
      await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
      if (rawLive(`probe-${attempt}`) && others.every((stream) => stream.received.some((item) => titleOf(item) === `probe-${attempt}`))) break;
    }

    // Completed the moment the first of a burst of writes reaches the socket,
    // while that write and the next ones are still being sent to the others.
    const completed = new Promise<void>((resolve) => {
      onFirstWrite = () => {
        onFirstWrite = undefined;
        for (const id of ids) socket.send(JSON.stringify({ id, type: "complete" }));
        socket.send(JSON.stringify({ type: "ping" }));
        resolve();
      };
    });
    const BURST = 10;
    for (let index = 0; index < BURST; index++) await admin.api.updateTodo(todo.id, { title: `burst-${index}` });
    await completed;
    await Promise.all(others.map((stream) => stream.until((item) => titleOf(item) === `burst-${BURST - 1}`, "the last write", 30_000)));
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(ponged).toBe(true);
    expect(nexts.filter((next) => next.afterPong)).toEqual([]);
    socket.close();
  }, 120_000);
});

describe("the frames of the direct fan-out", () => {
  it("are text frames holding exactly the `next` graphql-ws would send, non-ASCII titles byte for byte", async () => {
    const { spaceId, admin, members } = await spaceWithMembers(server, 2);
    const list = await admin.api.createList(spaceId, "Frames");
    const todo = await admin.api.createTodo(list.id, "start");
    const socket = new WebSocket(server.wsUrl, "graphql-transport-ws");
    const frames: { text: string; binary: boolean }[] = [];
    socket.on("message", (data, isBinary) => frames.push({ text: String(data), binary: isBinary }));
    await new Promise((resolve) => socket.once("open", resolve));
    socket.send(JSON.stringify({ type: "connection_init", payload: { authorization: `Bearer ${members[0]!.token}` } }));
    await new Promise((resolve) => socket.once("message", resolve)); // connection_ack
    const ids = ["a", 'quote"and\\backslash'];
    for (const id of ids) socket.send(JSON.stringify({ id, type: "subscribe", payload: { query: TITLES, variables: { spaceId } } }));
    const nextsOf = (title: string) =>
      frames
        .map((frame) => ({ ...frame, message: JSON.parse(frame.text) as { id: string; type: string; payload: { data: TitleEvent } } }))
        .filter(({ message }) => message.type === "next" && titleOf(message.payload.data) === title);
    for (let attempt = 1; ; attempt++) {
      if (attempt > 20) throw new Error("the subscriptions never went live");
      await admin.api.updateTodo(todo.id, { title: `probe-${attempt}` });
      await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
      if (nextsOf(`probe-${attempt}`).length === ids.length) break;
    }

    // Past the live probe both subscriptions are direct: these go through the fan-out's own frames.
    const titles = ["Grüße — 東京 🚀", "é".repeat(70), "a line\u2028separator, \"quotes\" and \\ backslash"];
    for (const title of titles) await admin.api.updateTodo(todo.id, { title });
    const deadline = Date.now() + 10_000;
    while (!titles.every((title) => nextsOf(title).length === ids.length)) {
      if (Date.now() > deadline) throw new Error(`not every title arrived on both subscriptions; received:\n${frames.map((frame) => frame.text).join("\n")}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    for (const title of titles) {
      const received = nextsOf(title);
      expect(received.map(({ message }) => message.id).sort()).toEqual([...ids].sort());
      for (const { text, binary, message } of received) {
        expect(binary).toBe(false);
        // The frame is the message as graphql-ws serializes it, key order included.
        expect(text).toBe(JSON.stringify({ id: message.id, type: "next", payload: message.payload }));
        expect(message.payload.data.spaceActivity.todo).toEqual({ id: todo.id, title });
      }
    }
    socket.close();
  }, 60_000);
});

describe("subscriptions whose results depend on the viewer", () => {
  it("are executed for each viewer: one sees the owner's email through a shared space, the other, who shares none now, gets null", async () => {
    const { spaceId, admin, members } = await spaceWithMembers(server, 2);
    const [near, far] = members as [(typeof members)[0], (typeof members)[0]];
    // The todo's owner also shares a second space with `near` only, then leaves the first.
    const owner = await signUp(server);
    const ownerApi = api(server, owner.token);
    const membership = await admin.api.addMember(spaceId, owner.email);
    const other = await ownerApi.createSpace("Second space");
    await ownerApi.addMember(other, near.email);
    const list = await admin.api.createList(spaceId, "Shared list");
    const todo = await ownerApi.createTodo(list.id, "theirs");
    await admin.api.removeMember(membership);

    const query = `subscription ($spaceId: ID!) {
      spaceActivity(spaceId: $spaceId) { ... on TodoEvent { todo { title owner { id email } list { title } } } }
    }`;
    type OwnerEvent = { spaceActivity: { todo?: { title: string; owner: { id: string; email: string | null }; list: { title: string } } | null } };
    const nearStream = open(near.token).subscribe<OwnerEvent>(query, { spaceId });
    const farStream = open(far.token).subscribe<OwnerEvent>(query, { spaceId });
    const probe = async (title: string) => admin.api.updateTodo(todo.id, { title });
    let probes = 0;
    const isProbe = (item: OwnerEvent) => item.spaceActivity.todo?.title.startsWith("probe-") ?? false;
    for (const stream of [nearStream, farStream]) await untilLive(stream, () => probe(`probe-${++probes}`), isProbe);
    nearStream.skipAll();
    farStream.skipAll();
    await probe("checked");
    // The matching event is the last of what until() returns (a late probe may come first).
    const nearEvent = (await nearStream.until((item) => item.spaceActivity.todo?.title === "checked")).at(-1);
    const farEvent = (await farStream.until((item) => item.spaceActivity.todo?.title === "checked")).at(-1);
    expect(nearEvent!.spaceActivity.todo).toEqual({ title: "checked", owner: { id: owner.user.id, email: owner.email }, list: { title: "Shared list" } });
    expect(farEvent!.spaceActivity.todo).toEqual({ title: "checked", owner: { id: owner.user.id, email: null }, list: { title: "Shared list" } });
  }, 60_000);
});

describe("a client that stops reading", () => {
  it("is closed with 4413 once more than WS_MAX_PENDING_EVENTS events wait for it, and resumes with `after` with no gap", async () => {
    const { spaceId, admin, members } = await spaceWithMembers(server, 1);
    const reader = members[0]!;
    const list = await admin.api.createList(spaceId, "Large events");
    const todo = await admin.api.createTodo(list.id, "start");
    // Each event carries its title 500 times over (about 50 KB).
    const aliases = Array.from({ length: 500 }, (_, index) => `t${index}: title`).join(" ");
    const query = `subscription ($spaceId: ID!, $after: String) {
      spaceActivity(spaceId: $spaceId, after: $after) { ... on TodoEvent { cursor todo { title ${aliases} } } }
    }`;

    // A raw graphql-ws socket, so that reading can be stopped under it.
    const socket = new WebSocket(server.wsUrl, "graphql-transport-ws");
    const closed = new Promise<{ code: number; reason: string }>((resolve) =>
      socket.once("close", (code, reason) => resolve({ code, reason: reason.toString() })),
    );
    const received: { cursor: string; title: string }[] = [];
    socket.on("message", (data) => {
      const message = JSON.parse(String(data)) as { type: string; payload?: { data?: { spaceActivity?: { cursor?: string; todo?: { title: string } } } } };
      const event = message.payload?.data?.spaceActivity;
      if (message.type === "next" && event?.cursor && event.todo) received.push({ cursor: event.cursor, title: event.todo.title });
    });
    await new Promise((resolve) => socket.once("open", resolve));
    socket.send(JSON.stringify({ type: "connection_init", payload: { authorization: `Bearer ${reader.token}` } }));
    await new Promise((resolve) => socket.once("message", resolve)); // connection_ack
    socket.send(JSON.stringify({ id: "1", type: "subscribe", payload: { query, variables: { spaceId } } }));
    const longTitle = (index: number) => `w${String(index).padStart(3, "0")}-${"x".repeat(90)}`;
    for (let attempt = 1; received.length === 0; attempt++) {
      if (attempt > 20) throw new Error("the subscription never went live");
      await admin.api.updateTodo(todo.id, { title: `probe-${attempt}` });
      await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
    }
    const lastRead = received.at(-1)!;

    // Stop reading: the kernel's buffers fill, then the server's. The client
    // sees the close only once it reads again.
    const tcp = (socket as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    tcp.pause();
    for (let index = 0; index < 200; index++) await admin.api.updateTodo(todo.id, { title: longTitle(index) });
    tcp.resume();
    const close = await closed;
    expect(close.code).toBe(4413);
    expect(close.reason).toMatch(/^Slow consumer/);

    // Resumed from the last event read before reading stopped: every event
    // of the log after it, once, in order (each shows the todo as it is now).
    const prisma = server.database.prisma;
    const newest = await newestEvent(prisma, { spaceId });
    const expected = (await logBetween(prisma, { spaceId }, testCursors.decode(lastRead.cursor)!, newest.id)).map((event) => testCursors.encode(event.id));
    expect(expected.length).toBeGreaterThanOrEqual(200);
    const resumed = open(reader.token).subscribe<{ spaceActivity: { cursor?: string } }>(
      `subscription ($spaceId: ID!, $after: String) { spaceActivity(spaceId: $spaceId, after: $after) { ... on TodoEvent { cursor } } }`,
      { spaceId, after: lastRead.cursor },
    );
    const replayed = await resumed.until((item) => item.spaceActivity.cursor === expected.at(-1), "the last write", 30_000);
    expect(replayed.map((item) => item.spaceActivity.cursor)).toEqual(expected);
  }, 120_000);
});
