import { badUserInput, conflict } from "../../errors.js";
import { isUniqueViolation } from "../../db/prismaErrors.js";
import { afterCursorFilter, pageOrder, toPage, type PageArgs } from "../../pagination/connection.js";
import type { PolicyClient } from "../../policy/client.js";
import { notNull, requireSlug, requireText } from "../validation.js";

const spaceName = (value: string) => requireText(value, "name", "Name", 4, 50);

async function slugMustBeFree<T>(write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    if (isUniqueViolation(error)) throw conflict("That slug is already taken.", "slug");
    throw error;
  }
}

export async function createSpace(db: PolicyClient, viewerId: string, input: { name: string; slug: string }) {
  const name = spaceName(input.name);
  const slug = requireSlug(input.slug);
  // The creator becomes owner and ADMIN member in the same statement's transaction.
  return slugMustBeFree(() =>
    db.space.create({ data: { name, slug, ownerId: viewerId, members: { create: { userId: viewerId, role: "ADMIN" } } } }),
  );
}

export async function updateSpace(
  db: PolicyClient,
  id: string,
  input: { name?: string | null; slug?: string | null },
) {
  const name = notNull(input.name, "name", "Name");
  const slug = notNull(input.slug, "slug", "Slug");
  const data = {
    ...(name === undefined ? {} : { name: spaceName(name) }),
    ...(slug === undefined ? {} : { slug: requireSlug(slug) }),
  };
  return slugMustBeFree(() => db.space.update({ where: { id }, data }));
}

export async function deleteSpace(db: PolicyClient, id: string): Promise<string> {
  await db.space.delete({ where: { id } });
  return id;
}

/** `space(id, slug)` takes exactly one of the two. */
export function spaceLookup(args: { id?: string | null; slug?: string | null }): { id: string } | { slug: string } {
  const byId = args.id != null;
  const bySlug = args.slug != null;
  if (byId === bySlug) throw badUserInput("Pass exactly one of id or slug.", byId ? "slug" : "id");
  return byId ? { id: args.id as string } : { slug: args.slug as string };
}

export async function listSpaces(db: PolicyClient, page: PageArgs) {
  const rows = await db.space.findMany({ where: afterCursorFilter(page.after), orderBy: pageOrder, take: page.first + 1 });
  return toPage(rows, page, () => db.space.count());
}
