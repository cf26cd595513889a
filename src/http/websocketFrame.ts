// A WebSocket text frame built in one buffer, written straight to the
// connection under the WebSocket (RFC 6455, section 5.2).
//
// The direct fan-out (src/realtime/multiplex.ts) writes one event to
// thousands of sockets in a loop. Through ws's send, each write is a frame
// header in a buffer of its own, then the two written corked (a writev, with
// the stream machinery of a corked write around it). Built here, the frame
// is one buffer and one plain write: about two thirds of the JavaScript time
// of a send, and 0.88× its CPU with the kernel's part (npm run bench:frames,
// 5,000 sockets on loopback: 2.2 against 3.5 µs of user CPU per write, 9.8
// against 11.1 µs in all).
//
// Writing to the connection beside ws keeps the frames in order because ws
// writes a frame to the connection at once when the socket negotiated no
// extension (permessage-deflate, whose compression queues frames, is off:
// see `writesFramesAsIs`), and everything here is written synchronously too.
// Server frames are not masked.
import type { Duplex } from "node:stream";
import type { WebSocket } from "ws";

const FIN_TEXT = 0x81;

/**
 * Sockets known to have negotiated no extension. Extensions are settled by
 * the handshake and never change after it, and ws's `extensions` getter
 * lists them into a new string at every call (Object.keys, join): asked
 * once per socket, not once per frame.
 */
const withoutExtensions = new WeakMap<WebSocket, boolean>();

/** Whether `textFrame`'s frames may be written beside ws on this socket: open, and no extension that would make ws queue its frames. */
export function writesFramesAsIs(socket: WebSocket): boolean {
  if (socket.readyState !== socket.OPEN) return false;
  let plain = withoutExtensions.get(socket);
  if (plain === undefined) withoutExtensions.set(socket, (plain = socket.extensions === ""));
  return plain;
}

/** One unmasked, final text frame whose payload is the concatenation of `parts` (UTF-8 bytes). */
export function textFrame(parts: readonly Uint8Array[]): Buffer {
  let payloadLength = 0;
  for (const part of parts) payloadLength += part.length;
  const headerLength = payloadLength < 126 ? 2 : payloadLength < 65_536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(headerLength + payloadLength);
  frame[0] = FIN_TEXT;
  if (headerLength === 2) {
    frame[1] = payloadLength;
  } else if (headerLength === 4) {
    frame[1] = 126;
    frame.writeUInt16BE(payloadLength, 2);
  } else {
    frame[1] = 127;
    frame.writeBigUInt64BE(BigInt(payloadLength), 2);
  }
  let offset = headerLength;
  for (const part of parts) {
    frame.set(part, offset);
    offset += part.length;
  }
  return frame;
}
