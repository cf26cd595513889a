import { conflict, notFound } from "../../errors.js";
import type { SpaceRole } from "../../generated/prisma/client.js";
import { isUniqueViolation } from "../../db/prismaErrors.js";
import type { AuthService } from "../auth/service.js";
import type { PolicyClient } from "../../policy/client.js";
import { normalizeEmail } from "../validation.js";

export async function addSpaceMember(
  db: PolicyClient,
  auth: Pick<AuthService, "userIdByEmail">,
  input: { spaceId: string; email: string; role: SpaceRole },
) {
  const email = normalizeEmail(input.email);
  // Authorise before looking the email up, so that only a space's admins can
  // learn whether an email has an account. The policy checks again on create.
  await db.$authorizeCreate("spaceMember", { spaceId: input.spaceId, role: input.role });
  const userId = await auth.userIdByEmail(email);
  if (!userId) throw notFound("User with that email");
  try {
    return await db.spaceMember.create({ data: { spaceId: input.spaceId, userId, role: input.role } });
  } catch (error) {
    if (isUniqueViolation(error)) throw conflict("That user is already a member of this space.", "email");
    throw error;
  }
}

export const updateSpaceMember = (db: PolicyClient, id: string, role: SpaceRole) =>
  db.spaceMember.update({ where: { id }, data: { role } });

export async function removeSpaceMember(db: PolicyClient, id: string): Promise<string> {
  await db.spaceMember.delete({ where: { id } });
  return id;
}
