// The direct fan-out's frames (src/http/websocketFrame.ts), read by a real
// ws client over a real socket: every length encoding (7-bit, 16-bit and
// 64-bit), multi-byte UTF-8 split across parts, order kept with the frames ws
// itself writes on the same socket, and no direct writing once an extension
// that makes ws queue its frames is negotiated.
import type { IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import WebSocket, { WebSocketServer } from "ws";
import { textFrame, writesFramesAsIs } from "../../src/http/websocketFrame.js";

const servers: WebSocketServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
});

/** A ws server on a free port, the first connection's socket and request, and a client connected to it that collects messages. */
async function connectedPair(options: { perMessageDeflate?: boolean } = {}) {
  const server = new WebSocketServer({ port: 0, host: "127.0.0.1", perMessageDeflate: options.perMessageDeflate ?? false });
  servers.push(server);
  await new Promise<void>((resolve) => server.once("listening", () => resolve()));
  const accepted = new Promise<{ socket: WebSocket; request: IncomingMessage }>((resolve) =>
    server.once("connection", (socket, request) => resolve({ socket, request })),
  );
  const client = new WebSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}`, { perMessageDeflate: options.perMessageDeflate ?? false });
  const messages: { text: string; binary: boolean }[] = [];
  client.on("message", (data, binary) => messages.push({ text: String(data), binary }));
  await new Promise((resolve) => client.once("open", resolve));
  const { socket, request } = await accepted;
  const received = async (count: number) => {
    for (let waited = 0; messages.length < count && waited < 5_000; waited += 5) await new Promise((resolve) => setTimeout(resolve, 5));
    return messages;
  };
  return { socket, connection: request.socket, client, received };
}

describe("textFrame", () => {
  it("is read by a ws client as the text of its parts, at every length encoding", async () => {
    const { socket, connection, client, received } = await connectedPair();
    expect(writesFramesAsIs(socket)).toBe(true);
    // 0 and 125: 7-bit length; 126 and 65,535: 16-bit; 65,536 and more: 64-bit.
    const lengths = [0, 1, 125, 126, 127, 65_535, 65_536, 200_000];
    const texts = lengths.map((length, index) => String(index % 10).repeat(length));
    for (const text of texts) {
      const bytes = Buffer.from(text);
      connection.write(textFrame([bytes.subarray(0, bytes.length >> 1), bytes.subarray(bytes.length >> 1)]));
    }
    const messages = await received(texts.length);
    expect(messages.map((message) => message.text.length)).toEqual(lengths);
    expect(messages.map((message) => message.text)).toEqual(texts);
    expect(messages.every((message) => !message.binary)).toBe(true);
    client.close();
  });

  it("encodes each length in the fewest bytes (RFC 6455 5.2), which ws would not insist on", () => {
    const header = (length: number) => [...textFrame([Buffer.alloc(length, 0x61)]).subarray(0, 10)];
    expect(header(125).slice(0, 2)).toEqual([0x81, 125]);
    expect(header(126).slice(0, 4)).toEqual([0x81, 126, 0, 126]);
    expect(header(65_535).slice(0, 4)).toEqual([0x81, 126, 0xff, 0xff]);
    expect(header(65_536)).toEqual([0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0]);
    expect(textFrame([Buffer.alloc(65_536)]).length).toBe(65_536 + 10);
  });

  it("carries multi-byte UTF-8 split between parts", async () => {
    const { connection, client, received } = await connectedPair();
    const text = `{"title":"Grüße, 日本語, 🎉"}`;
    const bytes = Buffer.from(text);
    // Split inside the emoji's four bytes: the frame is one message, so the split does not matter.
    const split = bytes.indexOf(Buffer.from("🎉")) + 2;
    connection.write(textFrame([bytes.subarray(0, split), bytes.subarray(split)]));
    expect((await received(1))[0]?.text).toBe(text);
    client.close();
  });

  it("keeps its order with frames ws writes on the same socket", async () => {
    const { socket, connection, client, received } = await connectedPair();
    for (let index = 0; index < 100; index++) {
      if (index % 2 === 0) connection.write(textFrame([Buffer.from(`direct ${index}`)]));
      else socket.send(`ws ${index}`);
    }
    const messages = await received(100);
    expect(messages.map((message) => Number(message.text.split(" ")[1]))).toEqual([...Array(100).keys()]);
    client.close();
  });
});

describe("writesFramesAsIs", () => {
  it("is false when permessage-deflate was negotiated, and once the socket is closing", async () => {
    const deflating = await connectedPair({ perMessageDeflate: true });
    expect(deflating.socket.extensions).toContain("permessage-deflate");
    expect(writesFramesAsIs(deflating.socket)).toBe(false);
    deflating.client.close();

    const plain = await connectedPair();
    expect(writesFramesAsIs(plain.socket)).toBe(true);
    plain.socket.close(1000);
    expect(writesFramesAsIs(plain.socket)).toBe(false);
    plain.client.close();
  });
});
