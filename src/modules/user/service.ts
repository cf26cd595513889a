import type { PolicyClient } from "../../policy/client.js";
import { optionalImageUrl, optionalText } from "../validation.js";

export interface UpdateMeInput {
  name?: string | null;
  image?: string | null;
}

export async function updateMe(db: PolicyClient, viewerId: string, input: UpdateMeInput) {
  const name = optionalText(input.name, "name", "Name", 100);
  const image = optionalImageUrl(input.image);
  return db.user.update({ where: { id: viewerId }, data: { name, image } });
}
