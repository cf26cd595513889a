-- A version of each space's memberships. Realtime delivery keeps the
-- memberships it has read between events (src/realtime/relationCache.ts) and
-- reads this column with every event's row: any change to the memberships
-- since bumps it, so the kept copy is used only while it is still current.
-- The trigger counts every insert, update and delete of SpaceMember rows,
-- cascades and hand-written SQL included, in the same transaction as the
-- change, so a version seen by a reader means every change before it has
-- committed.
ALTER TABLE "Space" ADD COLUMN "membersVersion" BIGINT NOT NULL DEFAULT 0;

-- The function body is an escaped string, not a dollar-quoted one, and
-- writes its semicolons as \073: prisma migrate deploy splits a migration at
-- every semicolon, dollar quotes or not.
CREATE FUNCTION "space_members_changed"() RETURNS trigger LANGUAGE plpgsql AS E'
BEGIN
  IF TG_OP <> ''INSERT'' THEN
    UPDATE "Space" SET "membersVersion" = "membersVersion" + 1 WHERE "id" = OLD."spaceId"\073
  END IF\073
  IF TG_OP = ''INSERT'' OR (TG_OP = ''UPDATE'' AND NEW."spaceId" IS DISTINCT FROM OLD."spaceId") THEN
    UPDATE "Space" SET "membersVersion" = "membersVersion" + 1 WHERE "id" = NEW."spaceId"\073
  END IF\073
  RETURN NULL\073
END
';

CREATE TRIGGER "SpaceMember_changed" AFTER INSERT OR UPDATE OR DELETE ON "SpaceMember"
FOR EACH ROW EXECUTE FUNCTION "space_members_changed"();
