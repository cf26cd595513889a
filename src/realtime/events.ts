// The shape of a change event, as stored in the event log and as resolved by
// the TodoEvent / ListEvent GraphQL types.
import type { ChangeKind, EventSubject } from "../generated/prisma/client.js";

export interface ChangeEvent {
  /**
   * The row's id, unique, from one sequence for every space (so clients only
   * ever see it enciphered, eventCursor.ts). Not in commit order: the log is
   * ordered by (txid, id), see eventLog.ts.
   */
  id: bigint;
  /** The writing transaction's id. */
  txid: bigint;
  kind: ChangeKind;
  subject: EventSubject;
  spaceId: string;
  listId: string;
  todoId: string | null;
  /** The list's owner and privacy at the time of the change. */
  listOwnerId: string;
  listPrivate: boolean;
}

/** An event as delivered to one subscriber, with the row read through its policy. */
export type DeliveredEvent = ChangeEvent & {
  todo: import("../generated/prisma/client.js").Todo | null;
  list: import("../generated/prisma/client.js").List | null;
};
