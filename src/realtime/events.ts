// The shape of a change event, as stored in the event log and as resolved by
// the TodoEvent / ListEvent GraphQL types.
import { badUserInput } from "../errors.js";
import type { ChangeKind, EventSubject } from "../generated/prisma/client.js";

export interface ChangeEvent {
  /** Position in the event log; strictly increasing in commit order. */
  id: bigint;
  kind: ChangeKind;
  subject: EventSubject;
  spaceId: string;
  listId: string;
  todoId: string | null;
  /** The list's owner and privacy at the time of the change. */
  listOwnerId: string;
  listPrivate: boolean;
}

const CURSOR_PREFIX = "ev:";

export function encodeEventCursor(id: bigint): string {
  return Buffer.from(`${CURSOR_PREFIX}${id.toString()}`).toString("base64url");
}

// Event ids are PostgreSQL bigints starting at 1.
const MAX_EVENT_ID = 9_223_372_036_854_775_807n;

export function decodeEventCursor(cursor: string, field = "after"): bigint {
  const text = Buffer.from(cursor, "base64url").toString("utf8");
  const digits = text.slice(CURSOR_PREFIX.length);
  const id = text.startsWith(CURSOR_PREFIX) && /^[1-9]\d{0,18}$/.test(digits) ? BigInt(digits) : 0n;
  if (id < 1n || id > MAX_EVENT_ID) throw badUserInput("That cursor is not valid.", field);
  return id;
}

/** An event as delivered to one subscriber, with the row read through its policy. */
export type DeliveredEvent = ChangeEvent & {
  todo: import("../generated/prisma/client.js").Todo | null;
  list: import("../generated/prisma/client.js").List | null;
};
