// What one fan-out write to a WebSocket costs the server, framed two ways:
// through ws's send (a header buffer and the payload, written corked: one
// writev) and as the direct fan-out writes it (src/http/websocketFrame.ts:
// one buffer, one write to the connection under the socket).
//
//   npm run bench:frames
//   BENCH_SOCKETS=5000 BENCH_ROUNDS=20   (sockets, and frames written to each per pass)
//
// A ws server in this process and BENCH_SOCKETS ws clients in a child process
// (this file with --clients), on loopback. A pass writes one frame of the
// fan-out's shape (a `next` with its id, about 250 bytes) to every socket,
// then waits until the clients have read them all; after a warm-up pass of
// each, the passes alternate (ws, direct, direct, ws, ws, direct), so that whatever
// else the machine does falls on both alike. Printed per pass: the server's
// user and system CPU per write (process.cpuUsage), and at the end the
// medians and their ratio. Every wait is bounded.
import { fork } from "node:child_process";
import { once } from "node:events";
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { fileURLToPath } from "node:url";
import WebSocket, { WebSocketServer } from "ws";
import { boundedInt } from "./support.js";
import { textFrame } from "../src/http/websocketFrame.js";

const SOCKETS = boundedInt(process.env.BENCH_SOCKETS, 5_000, 1, 9_000, "BENCH_SOCKETS");
const ROUNDS = boundedInt(process.env.BENCH_ROUNDS, 20, 1, 1_000, "BENCH_ROUNDS");
const READ_TIMEOUT_MS = 60_000;

if (process.argv.includes("--clients")) await runClients();
else await runServer();

async function runServer(): Promise<void> {
  const http = createServer();
  const wsServer = new WebSocketServer({ server: http });
  const connections: { socket: WebSocket; connection: Duplex }[] = [];
  wsServer.on("connection", (socket: WebSocket, request: IncomingMessage) => connections.push({ socket, connection: request.socket }));
  http.listen(0, "127.0.0.1");
  await once(http, "listening");
  const port = (http.address() as AddressInfo).port;
  const clients = fork(fileURLToPath(import.meta.url), ["--clients", String(port), String(SOCKETS)], { execArgv: process.execArgv });
  const fromClients = (type: string) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no "${type}" from the clients in ${READ_TIMEOUT_MS} ms`)), READ_TIMEOUT_MS);
      clients.once("message", (message) => {
        clearTimeout(timer);
        if (message === type) resolve();
        else reject(new Error(`clients said ${String(message)}`));
      });
    });
  try {
    await fromClients("open");
    for (let waited = 0; connections.length < SOCKETS; waited += 10) {
      if (waited > READ_TIMEOUT_MS) throw new Error(`${connections.length} of ${SOCKETS} sockets connected`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const prefix = Buffer.from(`{"id":"3f1c2a9e-8d7b-4c5a-9e1f-2b3c4d5e6f70","type":"next","payload":`);
    const payload = Buffer.from(
      JSON.stringify({ data: { spaceActivity: { kind: "UPDATED", todo: { id: "c".repeat(25), title: "A todo renamed", completed: false, listId: "l".repeat(25) } } } }),
    );
    const closingBrace = Buffer.from("}");
    const ways = {
      ws: (to: (typeof connections)[number]) => to.socket.send(Buffer.concat([prefix, payload, closingBrace]), { binary: false }),
      direct: (to: (typeof connections)[number]) => to.connection.write(textFrame([prefix, payload, closingBrace])),
    };
    const perWrite: Record<keyof typeof ways, { user: number; system: number }[]> = { ws: [], direct: [] };
    console.log(`${SOCKETS} sockets, ${ROUNDS} frames to each per pass; server CPU µs per write:`);
    // A pass of each first, not counted: the first writes to fresh sockets, and cold code, are slower.
    const order: (keyof typeof ways)[] = ["ws", "direct", "ws", "direct", "direct", "ws", "ws", "direct"];
    for (const [pass, way] of order.entries()) {
      const write = ways[way];
      const before = process.cpuUsage();
      for (let round = 0; round < ROUNDS; round++) {
        for (const to of connections) write(to);
        const read = fromClients("read");
        clients.send(SOCKETS);
        await read;
      }
      const used = process.cpuUsage(before);
      const writes = ROUNDS * SOCKETS;
      const figures = { user: used.user / writes, system: used.system / writes };
      if (pass >= 2) perWrite[way].push(figures);
      console.log(`  ${way.padEnd(6)}${pass < 2 ? " (warm-up)" : ""} user ${figures.user.toFixed(2)}  system ${figures.system.toFixed(2)}  total ${(figures.user + figures.system).toFixed(2)}`);
    }
    const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
    const summary = (way: keyof typeof ways, part: (figures: { user: number; system: number }) => number) => median(perWrite[way].map(part));
    for (const [label, part] of [
      ["user", (figures: { user: number; system: number }) => figures.user],
      ["system", (figures: { user: number; system: number }) => figures.system],
      ["total", (figures: { user: number; system: number }) => figures.user + figures.system],
    ] as const) {
      const ws = summary("ws", part);
      const direct = summary("direct", part);
      console.log(`median ${label.padEnd(6)}: ws ${ws.toFixed(2)} µs, direct ${direct.toFixed(2)} µs (direct/ws ${(direct / ws).toFixed(2)}×)`);
    }
    console.log("(the clients share this machine's cores: the system part includes loopback's delivery to them)");
  } finally {
    clients.kill();
    for (const { socket } of connections) socket.terminate();
    wsServer.close();
    http.close();
  }
}

async function runClients(): Promise<void> {
  const [port, count] = process.argv.slice(process.argv.indexOf("--clients") + 1).map(Number) as [number, number];
  let received = 0;
  // Frames written so far, as the server last said; "read" once all of them are.
  let target = 0;
  let waiting = false;
  const check = () => {
    if (waiting && received >= target) {
      waiting = false;
      process.send?.("read");
    }
  };
  const sockets: WebSocket[] = [];
  let opened = 0;
  for (let index = 0; index < count; index++) {
    const socket = new WebSocket(`ws://127.0.0.1:${port}`);
    socket.on("open", () => {
      opened += 1;
      if (opened === count) process.send?.("open");
    });
    // Read as a subscriber would: the frame as JSON.
    socket.on("message", (data) => {
      if ((JSON.parse(String(data)) as { type?: string }).type === "next") received += 1;
      check();
    });
    socket.on("error", (error) => process.send?.(`error: ${error.message}`));
    sockets.push(socket);
    // Opened in batches, as bench:subscriptions does, within the server's backlog.
    if (index % 200 === 199) await new Promise((resolve) => setTimeout(resolve, 20));
  }
  process.on("message", (more: number) => {
    target += more;
    waiting = true;
    check();
  });
}
