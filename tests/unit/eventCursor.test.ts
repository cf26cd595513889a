// The event cursor cipher (src/realtime/eventCursor.ts): what a cursor holds
// can only be read with the key, every cursor has one length, and anything
// the key did not make is refused. Through the server: tests/realtime/cursors.test.ts.
import { describe, expect, it } from "vitest";
import { createEventCursors } from "../../src/realtime/eventCursor.js";

const secret = (text: string) => new TextEncoder().encode(text);
const cursors = createEventCursors(secret("a-secret-of-at-least-thirty-two-characters-1"));
const MAX_EVENT_ID = 9_223_372_036_854_775_807n;
const IDS = [1n, 2n, 3n, 9n, 10n, 255n, 256n, 65_536n, 2n ** 32n, 2n ** 53n + 1n, MAX_EVENT_ID - 1n, MAX_EVENT_ID];

const refusal = (cursor: string, field?: string) => {
  try {
    cursors.decode(cursor, field);
  } catch (error) {
    const { message, extensions } = error as { message: string; extensions: Record<string, unknown> };
    return { message, ...extensions };
  }
  return "accepted";
};
const NOT_VALID = { code: "BAD_USER_INPUT", field: "after", message: "That cursor is not valid." };

describe("event cursors", () => {
  it("decode, with the key, to the id they were made from; all have 22 base64url characters", () => {
    for (const id of IDS) {
      const cursor = cursors.encode(id);
      expect(cursor, String(id)).toMatch(/^[A-Za-z0-9_-]{22}$/);
      expect(cursors.decode(cursor)).toBe(id);
      // The same id, the same cursor: every holder of an event has one cursor for it.
      expect(cursors.encode(id)).toBe(cursor);
    }
    expect(new Set(IDS.map((id) => cursors.encode(id))).size).toBe(IDS.length);
  });

  it("carry neither the id nor its order in their bytes", () => {
    // Ids of ten digits: a short one (say "7") turns up in 16 random bytes by chance.
    const sequence = Array.from({ length: 200 }, (_, index) => 4_000_000_000n + BigInt(index));
    const made = sequence.map((id) => Buffer.from(cursors.encode(id), "base64url"));
    for (const [index, bytes] of made.entries()) {
      expect(bytes.toString("latin1")).not.toContain(String(sequence[index]));
    }
    // Consecutive ids give blocks that compare either way about as often:
    // ordered ciphertexts would be 199 of 199 in one direction.
    const ascending = made.slice(1).filter((bytes, index) => Buffer.compare(made[index]!, bytes) < 0).length;
    expect(ascending).toBeGreaterThan(60);
    expect(ascending).toBeLessThan(140);
  });

  it("made with another key are refused, and the same secret gives the same key (every instance reads every other's)", () => {
    const sameSecret = createEventCursors(secret("a-secret-of-at-least-thirty-two-characters-1"));
    const otherSecret = createEventCursors(secret("a-secret-of-at-least-thirty-two-characters-2"));
    for (const id of IDS) {
      expect(sameSecret.decode(cursors.encode(id))).toBe(id);
      expect(refusal(otherSecret.encode(id))).toEqual(NOT_VALID);
    }
  });

  it("refuse any change of any bit, and any other spelling of the same bytes", () => {
    const genuine = Buffer.from(cursors.encode(123_456n), "base64url");
    for (let bit = 0; bit < genuine.length * 8; bit++) {
      const changed = Buffer.from(genuine);
      changed[bit >> 3]! ^= 1 << (bit & 7);
      expect(refusal(changed.toString("base64url")), `bit ${bit}`).toEqual(NOT_VALID);
    }
    // The last character carries 2 bits of the 16th byte and 4 unused ones:
    // set an unused one, and Node would still decode the same bytes.
    const text = genuine.toString("base64url");
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const stray = text.slice(0, -1) + alphabet[alphabet.indexOf(text.at(-1)!) ^ 1]!;
    expect(Buffer.from(stray, "base64url").equals(genuine)).toBe(true);
    expect(refusal(stray)).toEqual(NOT_VALID);
    for (const other of ["", "x", `${text}=`, `${text}A`, text.slice(0, -1), "A".repeat(22), "_".repeat(22), `${text.slice(0, 10)}+${text.slice(11)}`]) {
      expect(refusal(other), other).toEqual(NOT_VALID);
    }
  });

  it("name the field they were given for", () => {
    expect(refusal("garbage", "from")).toEqual({ ...NOT_VALID, field: "from" });
  });

  it("of the earlier format (base64url of 'ev:<id>') are refused with a message of their own", () => {
    const legacy = {
      code: "BAD_USER_INPUT",
      field: "after",
      message: "That cursor is in a format this server no longer accepts. Reload and subscribe without 'after'.",
    };
    const b64 = (text: string) => Buffer.from(text).toString("base64url");
    // 13 digits make 16 bytes, 22 characters: the length of a cursor of today.
    for (const id of ["1", "42", "1234567890123", "9223372036854775807"]) {
      expect(refusal(b64(`ev:${id}`)), id).toEqual(legacy);
    }
    expect(b64("ev:1234567890123")).toHaveLength(22);
    for (const broken of ["ev:0", "ev:01", "ev:-1", "ev:abc", "ev:99999999999999999999", "todo:1"]) {
      expect(refusal(b64(broken)), broken).toEqual(NOT_VALID);
    }
  });

  it("are made only for event ids", () => {
    for (const id of [0n, -1n, MAX_EVENT_ID + 1n]) expect(() => cursors.encode(id), String(id)).toThrow(RangeError);
  });
});
