// Input rules shared by the services. Each failure is BAD_USER_INPUT naming the
// input field, with a message written for a person.
import { badUserInput } from "../errors.js";

export function requireText(value: string, field: string, label: string, min: number, max: number): string {
  const trimmed = value.trim();
  if (trimmed.length < min || trimmed.length > max) {
    throw badUserInput(
      min === max ? `${label} must be ${min} characters.` : `${label} must be ${min}–${max} characters.`,
      field,
    );
  }
  return trimmed;
}

export function optionalText(value: string | null | undefined, field: string, label: string, max: number) {
  if (value === undefined) return undefined;
  if (value === null) return null;
  const trimmed = value.trim();
  if (trimmed.length > max) throw badUserInput(`${label} must be at most ${max} characters.`, field);
  return trimmed === "" ? null : trimmed;
}

/** Rejects an explicit null for a field that cannot be cleared. */
export function notNull<T>(value: T | null | undefined, field: string, label: string): T | undefined {
  if (value === null) throw badUserInput(`${label} cannot be null.`, field);
  return value;
}

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
export function normalizeEmail(value: string, field = "email"): string {
  const email = value.trim().toLowerCase();
  if (email.length > 254 || !EMAIL.test(email)) throw badUserInput("Enter a valid email address.", field);
  return email;
}

export const PASSWORD_MIN = 8;
export const PASSWORD_MAX = 256;
export function requirePassword(value: string, field = "password"): string {
  if (value.length < PASSWORD_MIN) throw badUserInput(`Password must be at least ${PASSWORD_MIN} characters.`, field);
  if (value.length > PASSWORD_MAX) throw badUserInput(`Password must be at most ${PASSWORD_MAX} characters.`, field);
  return value;
}

const SLUG = /^[0-9a-zA-Z]{4,16}$/;
export function requireSlug(value: string, field = "slug"): string {
  if (!SLUG.test(value)) throw badUserInput("Slug must be 4–16 letters or digits.", field);
  return value;
}

export function optionalImageUrl(value: string | null | undefined, field = "image") {
  const url = optionalText(value, field, "Image URL", 2048);
  if (url && !/^https?:\/\/\S+$/i.test(url)) throw badUserInput("Image must be an http(s) URL.", field);
  return url;
}

/** Ids are cuids; anything else cannot name a row, so it is simply not found. */
export const looksLikeId = (value: string): boolean => /^[a-z0-9]{1,64}$/i.test(value);
