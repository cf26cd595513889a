// Event cursors (the `cursor` of spaceActivity and todoChanged events, passed
// back as `after`). Event ids come from one sequence shared by every space, so
// a readable id would let anyone count the events of spaces they are not in
// from the gap between two of their own cursors. A cursor is therefore the id
// enciphered with a key only the server holds: it carries no order and no
// count, and it cannot be forged.
//
// The construction is encode-then-encipher: one 16-byte block holding a fixed
// 8-byte tag and the id as an unsigned 64-bit integer, put through AES-256 (the
// block cipher itself: "ECB" over exactly one block, no chaining, no padding).
// A block cipher is a pseudorandom permutation, so
// - different ids give unrelated-looking blocks, and the same id always the
//   same cursor (every subscriber who saw an event holds the same cursor, and
//   there is no nonce to run out of, whatever the number of cursors issued);
// - a cursor not made with this key deciphers to a random block, whose first
//   8 bytes match the tag with probability 2^-64: that is the authentication.
// Every cursor is 22 base64url characters, whatever the id.
//
// The key is derived (HKDF-SHA256, an info label of its own) from the secret
// that signs bearer tokens, which every instance of a deployment shares
// already: cursors work across instances with no new setting, and the key is
// never the token key itself. Changing JWT_SECRET invalidates outstanding
// cursors, as it invalidates tokens; a client then subscribes without `after`.
//
// Cursors of the earlier format (base64url of `ev:<id>`) are refused with
// their own message. Accepting them would mean accepting any `ev:<n>` a client
// writes, and probing those (which n is accepted, which is "not valid") would
// read the global counter again.
import { createCipheriv, createDecipheriv, hkdfSync, timingSafeEqual } from "node:crypto";
import { badUserInput } from "../errors.js";

export interface EventCursors {
  encode(id: bigint): string;
  /** The event id a cursor names; BAD_USER_INPUT on `field` for anything this key did not make. */
  decode(cursor: string, field?: string): bigint;
}

const KEY_INFO = "todo-graphql-server event cursor v1";
const TAG = Buffer.from("evcursr1", "latin1");
const CIPHER = "aes-256-ecb";
const CURSOR_PATTERN = /^[A-Za-z0-9_-]{22}$/;
// Event ids are PostgreSQL bigints starting at 1.
const MAX_EVENT_ID = 9_223_372_036_854_775_807n;
const LEGACY_CURSOR = /^ev:[1-9]\d{0,18}$/;

export function createEventCursors(secret: Uint8Array): EventCursors {
  const key = Buffer.from(hkdfSync("sha256", secret, Buffer.alloc(0), KEY_INFO, 32));

  const open = (cursor: string): bigint | undefined => {
    if (!CURSOR_PATTERN.test(cursor)) return undefined;
    const bytes = Buffer.from(cursor, "base64url");
    // Node's base64url decoder ignores stray trailing bits; only the one
    // spelling this server writes is accepted.
    if (bytes.length !== 16 || bytes.toString("base64url") !== cursor) return undefined;
    const decipher = createDecipheriv(CIPHER, key, null).setAutoPadding(false);
    const block = Buffer.concat([decipher.update(bytes), decipher.final()]);
    if (!timingSafeEqual(block.subarray(0, 8), TAG)) return undefined;
    const id = block.readBigUInt64BE(8);
    return id >= 1n && id <= MAX_EVENT_ID ? id : undefined;
  };

  return {
    encode(id) {
      if (id < 1n || id > MAX_EVENT_ID) throw new RangeError(`Not an event id: ${id}`);
      const block = Buffer.alloc(16);
      TAG.copy(block, 0);
      block.writeBigUInt64BE(id, 8);
      const cipher = createCipheriv(CIPHER, key, null).setAutoPadding(false);
      return Buffer.concat([cipher.update(block), cipher.final()]).toString("base64url");
    },
    decode(cursor, field = "after") {
      const id = open(cursor);
      if (id !== undefined) return id;
      // An old cursor of 13 digits is 22 characters too, so this is asked
      // only once deciphering has failed.
      if (LEGACY_CURSOR.test(Buffer.from(cursor, "base64url").toString("latin1"))) {
        throw badUserInput(
          "That cursor is in a format this server no longer accepts. Reload and subscribe without 'after'.",
          field,
        );
      }
      throw badUserInput("That cursor is not valid.", field);
    },
  };
}
