// A write and its event-log entry, in one transaction: the event is published
// only once the transaction commits (policy client), and a write that fails
// (denied, invalid, conflicting) records nothing.
import type { PolicyClient } from "../policy/client.js";
import type { NewEvent } from "../realtime/eventLog.js";

export function recordedWrite<Row>(
  db: PolicyClient,
  write: (tx: PolicyClient) => Promise<Row>,
  event: (row: Row, tx: PolicyClient) => NewEvent | Promise<NewEvent>,
): Promise<Row> {
  return db.$transaction(async (tx) => {
    const row = await write(tx);
    await tx.$appendEvent(await event(row, tx));
    return row;
  });
}
