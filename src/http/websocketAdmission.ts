// Caps on WebSocket connections, so that no one client can hold the server's
// memory with sockets (each costs about 100 KB, see BYTES_PER_SOCKET):
//   - all sockets of the instance (WS_MAX_CONNECTIONS), and
//   - sockets from one client address that have not been acknowledged yet
//     (WS_MAX_PENDING_PER_ADDRESS): decided at the upgrade, refused with 503;
//   - sockets of one signed-in user (WS_MAX_CONNECTIONS_PER_USER): known only
//     at connection_init, refused by closing with CLOSE_TOO_MANY_CONNECTIONS.
// The per-address cap counts only sockets not yet acknowledged: many users
// behind one address (an office, a NAT) connect freely once signed in, while
// a flood of sockets that never authenticate is stopped at the door.
import type { Config } from "../config.js";

/** Close code for a user's connection_init beyond WS_MAX_CONNECTIONS_PER_USER (4429 is graphql-ws's second connection_init). */
export const CLOSE_TOO_MANY_CONNECTIONS = 4430;

export type RefusalReason = "instance" | "pending_per_address" | "per_user";

/** What one socket holds; release() frees all of it, once. */
export interface Admission {
  /** connection_init accepted: the socket no longer counts as pending for its address. */
  acknowledged(): void;
  /** Takes a slot for the user; false when the user already holds the most allowed. */
  claimUser(userId: string): boolean;
  release(): void;
}

export function createWebSocketAdmission(caps: Pick<Config["websocket"], "maxConnections" | "maxConnectionsPerUser" | "maxPendingPerAddress">) {
  let open = 0;
  const pendingByAddress = new Map<string, number>();
  const byUser = new Map<string, number>();

  const decrement = (counts: Map<string, number>, key: string) => {
    const left = (counts.get(key) ?? 1) - 1;
    if (left > 0) counts.set(key, left);
    else counts.delete(key); // no entry left behind per address or user
  };

  return {
    /** Why a new socket from `address` would be refused now, if it would. */
    refusal(address: string): RefusalReason | undefined {
      if (open >= caps.maxConnections) return "instance";
      if ((pendingByAddress.get(address) ?? 0) >= caps.maxPendingPerAddress) return "pending_per_address";
      return undefined;
    },

    /** A socket from `address` was upgraded: it counts until release(). */
    admit(address: string): Admission {
      open += 1;
      pendingByAddress.set(address, (pendingByAddress.get(address) ?? 0) + 1);
      let pending = true;
      let user: string | undefined;
      let released = false;
      const acknowledged = () => {
        if (!pending) return;
        pending = false;
        decrement(pendingByAddress, address);
      };
      return {
        acknowledged,
        claimUser(userId) {
          if (released) return false;
          if (user !== undefined) return true;
          const held = byUser.get(userId) ?? 0;
          if (held >= caps.maxConnectionsPerUser) return false;
          byUser.set(userId, held + 1);
          user = userId;
          return true;
        },
        release() {
          if (released) return;
          released = true;
          acknowledged();
          if (user !== undefined) decrement(byUser, user);
          open -= 1;
        },
      };
    },
  };
}
