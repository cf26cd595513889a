// Password hashing with argon2id (OWASP's first choice), via a maintained
// package that ships prebuilt binaries. Parameters are the library defaults
// (m=19 MiB, t=2, p=1), OWASP's recommended minimum.
import { hash, verify } from "@node-rs/argon2";

export const hashPassword = (password: string): Promise<string> => hash(password);

export async function verifyPassword(passwordHash: string, password: string): Promise<boolean> {
  try {
    return await verify(passwordHash, password);
  } catch {
    return false;
  }
}

// Verifying against this when no account matches keeps log-in time the same
// for unknown emails, so response times do not reveal which emails exist.
let decoyHash: Promise<string> | undefined;
export function decoyPasswordHash(): Promise<string> {
  decoyHash ??= hash("decoy-password-for-timing");
  return decoyHash;
}
