// A TCP proxy the test controls, to make a real database "unreachable" without
// touching the shared PostgreSQL server:
//   cut()        drops every connection and refuses new ones (the server is gone);
//   blackhole()  keeps every connection open but passes nothing either way, and
//                accepts new connections without ever answering (a network
//                partition: packets vanish, nobody says so);
//   restore()    back to normal. After a blackhole the connections held open
//                are dropped, as a real peer would have reset them by then.
import net from "node:net";

export interface TcpProxy {
  port: number;
  cut(): Promise<void>;
  blackhole(): Promise<void>;
  restore(): Promise<void>;
  close(): Promise<void>;
}

export async function startTcpProxy(targetHost: string, targetPort: number): Promise<TcpProxy> {
  const sockets = new Set<net.Socket>();
  let server: net.Server | undefined;
  let port = 0;
  let silent = false;

  const track = (socket: net.Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
  };

  const listen = () =>
    new Promise<void>((resolve, reject) => {
      server = net.createServer((client) => {
        track(client);
        if (silent) {
          // Accepted, never answered.
          client.pause();
          return;
        }
        const upstream = net.connect(targetPort, targetHost);
        track(upstream);
        client.pipe(upstream).pipe(client);
        client.on("close", () => upstream.destroy());
        upstream.on("close", () => client.destroy());
      });
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => {
        port = (server!.address() as net.AddressInfo).port;
        resolve();
      });
    });

  const stop = () =>
    new Promise<void>((resolve) => {
      silent = false;
      for (const socket of sockets) socket.destroy();
      if (!server) return resolve();
      server.close(() => resolve());
      server = undefined;
    });

  const blackhole = async () => {
    silent = true;
    for (const socket of sockets) {
      socket.unpipe();
      socket.pause();
    }
    if (!server) await listen();
  };

  const restore = async () => {
    if (silent) await stop();
    if (!server) await listen();
  };

  await listen();
  return { get port() { return port; }, cut: stop, blackhole, restore, close: stop };
}
