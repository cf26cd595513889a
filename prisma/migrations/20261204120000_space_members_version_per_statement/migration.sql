-- The version of the memberships (migration 20261204000000_space_members_version)
-- bumped once per statement and space instead of once per row. Per row, a
-- statement adding 10,000 members to one space updated the row of that space
-- 10,000 times, each update walking the versions the ones before it left:
-- 0.37 s for 2,000 rows, 1.6 s for 5,000, 4.8 s for 10,000 (quadratic, past
-- the default query timeout). Readers compare versions for equality only, so
-- one bump per statement that changed the memberships of a space is enough, still
-- in the same transaction as the change.
--
-- A trigger with transition tables takes one event, hence three. The
-- function bodies are escaped strings with their semicolons as \073:
-- prisma migrate deploy splits a migration at every semicolon, comments
-- included, outside what it takes for quotes: these comments hold neither.
DROP TRIGGER "SpaceMember_changed" ON "SpaceMember";
DROP FUNCTION "space_members_changed"();

CREATE FUNCTION "space_members_inserted"() RETURNS trigger LANGUAGE plpgsql AS E'
BEGIN
  UPDATE "Space" SET "membersVersion" = "membersVersion" + 1
  WHERE "id" IN (SELECT "spaceId" FROM "added_members")\073
  RETURN NULL\073
END
';

CREATE FUNCTION "space_members_deleted"() RETURNS trigger LANGUAGE plpgsql AS E'
BEGIN
  UPDATE "Space" SET "membersVersion" = "membersVersion" + 1
  WHERE "id" IN (SELECT "spaceId" FROM "removed_members")\073
  RETURN NULL\073
END
';

-- Any update counts (a role is part of what the rules read), and a
-- membership moved to another space changes both.
CREATE FUNCTION "space_members_updated"() RETURNS trigger LANGUAGE plpgsql AS E'
BEGIN
  UPDATE "Space" SET "membersVersion" = "membersVersion" + 1
  WHERE "id" IN (SELECT "spaceId" FROM "members_before" UNION SELECT "spaceId" FROM "members_after")\073
  RETURN NULL\073
END
';

CREATE TRIGGER "SpaceMember_inserted" AFTER INSERT ON "SpaceMember"
REFERENCING NEW TABLE AS "added_members"
FOR EACH STATEMENT EXECUTE FUNCTION "space_members_inserted"();

CREATE TRIGGER "SpaceMember_deleted" AFTER DELETE ON "SpaceMember"
REFERENCING OLD TABLE AS "removed_members"
FOR EACH STATEMENT EXECUTE FUNCTION "space_members_deleted"();

CREATE TRIGGER "SpaceMember_updated" AFTER UPDATE ON "SpaceMember"
REFERENCING OLD TABLE AS "members_before" NEW TABLE AS "members_after"
FOR EACH STATEMENT EXECUTE FUNCTION "space_members_updated"();
