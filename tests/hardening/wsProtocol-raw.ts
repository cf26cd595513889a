// A raw graphql-transport-ws peer over `ws`: it sends exactly what a test
// writes (including garbage) and records every message and the close, so the
// tests see the protocol as the server speaks it, not as a client library
// smooths it over.
import WebSocket from "ws";

export const SUBPROTOCOL = "graphql-transport-ws";
// Only a guard against a hung test; no test asserts how long anything takes.
const WAIT_MS = 10_000;

export interface Closed {
  code: number;
  reason: string;
}

export interface ServerMessage {
  type: string;
  id?: string;
  payload?: unknown;
}

export interface OperationResult {
  data?: Record<string, unknown> | null;
  errors?: { message: string; extensions?: { code?: string } & Record<string, unknown>; path?: unknown }[];
}

export class RawSocket {
  readonly messages: ServerMessage[] = [];
  readonly closed: Promise<Closed>;
  private waiters = new Set<() => void>();
  private closedWith: Closed | undefined;

  private constructor(readonly socket: WebSocket) {
    this.closed = new Promise((resolve) => {
      socket.on("close", (code, reason) => {
        this.closedWith = { code, reason: reason.toString() };
        resolve(this.closedWith);
        this.notify();
      });
    });
    socket.on("message", (data) => {
      try {
        this.messages.push(JSON.parse(data.toString()) as ServerMessage);
      } catch {
        this.messages.push({ type: "<not json>", payload: data.toString() });
      }
      this.notify();
    });
    socket.on("error", () => undefined); // the close event reports what matters
  }

  /** Opens a socket; resolves once it is open (or closed, for a refused upgrade). */
  static open(url: string, protocols: string | string[] = SUBPROTOCOL, options?: WebSocket.ClientOptions): Promise<RawSocket> {
    const raw = new RawSocket(new WebSocket(url, protocols, options));
    return new Promise((resolve) => {
      raw.socket.once("open", () => resolve(raw));
      void raw.closed.then(() => resolve(raw));
    });
  }

  get isClosed(): boolean {
    return this.closedWith !== undefined;
  }

  send(message: unknown): void {
    this.socket.send(typeof message === "string" || Buffer.isBuffer(message) ? message : JSON.stringify(message));
  }

  /** connection_init, then the server's answer: the ack, or the close. */
  async init(payload?: Record<string, unknown>): Promise<ServerMessage | Closed> {
    this.send(payload === undefined ? { type: "connection_init" } : { type: "connection_init", payload });
    const ack = await this.waitFor((m) => m.type === "connection_ack");
    return ack ?? (await this.closed);
  }

  /** The first message (from the start) matching `predicate`, or undefined once the socket closes. */
  async waitFor(predicate: (message: ServerMessage) => boolean): Promise<ServerMessage | undefined> {
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      const found = this.messages.find(predicate);
      if (found) return found;
      if (this.isClosed) return undefined;
      if (Date.now() > deadline) throw new Error(`no matching message within ${WAIT_MS} ms; got ${JSON.stringify(this.messages)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 200);
        this.waiters.add(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Sends a subscribe and collects its result: the next payloads until complete, or the error message. */
  async operation(id: string, query: string, variables?: Record<string, unknown>, operationName?: string): Promise<OperationResult> {
    this.send({ id, type: "subscribe", payload: { query, ...(variables ? { variables } : {}), ...(operationName ? { operationName } : {}) } });
    const end = await this.waitFor((m) => m.id === id && (m.type === "complete" || m.type === "error"));
    if (!end) throw new Error(`socket closed during operation ${id}: ${JSON.stringify(this.closedWith)}`);
    if (end.type === "error") return { errors: end.payload as OperationResult["errors"] };
    const next = this.messages.find((m) => m.id === id && m.type === "next");
    return (next?.payload ?? {}) as OperationResult;
  }

  async close(): Promise<void> {
    if (!this.isClosed) {
      this.socket.close(1000);
      await this.closed;
    }
  }

  private notify() {
    const waiters = [...this.waiters];
    this.waiters.clear();
    for (const waiter of waiters) waiter();
  }
}
