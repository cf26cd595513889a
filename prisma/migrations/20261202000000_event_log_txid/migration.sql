-- The event log is ordered by (txid, id) instead of under one advisory lock:
-- each event records its writing transaction's id, and readers advance only
-- below the oldest transaction still running. Events written before this
-- migration get txid 0, so they come first, in their id order.
ALTER TABLE "Event" ADD COLUMN "txid" BIGINT NOT NULL DEFAULT 0;
ALTER TABLE "Event" ALTER COLUMN "txid" SET DEFAULT (pg_current_xact_id())::text::bigint;

DROP INDEX "Event_spaceId_id_idx";
DROP INDEX "Event_listId_id_idx";

CREATE INDEX "Event_txid_id_idx" ON "Event"("txid", "id");
CREATE INDEX "Event_spaceId_txid_id_idx" ON "Event"("spaceId", "txid", "id");
CREATE INDEX "Event_listId_txid_id_idx" ON "Event"("listId", "txid", "id");
