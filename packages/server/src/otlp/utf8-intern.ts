import { isUtf8 } from 'node:buffer';

/** A Node Buffer with V8's native UTF-8 slicer (what `Buffer#toString('utf8')` calls). */
export type Utf8Buffer = Buffer & { utf8Slice(start: number, end: number): string };

/** Strings longer than this (in bytes) are decoded every time: ids and names of OTLP are shorter. */
const MAX_INTERNED_BYTES = 48;
/** Slots of the direct-mapped table (a power of two): 8,192 × ≤ 48 bytes stays under 1 MiB. */
const SLOTS = 8_192;

/**
 * Decodes short UTF-8 strings through a table of the ones already seen, so the same bytes give
 * the same string object again. An OTLP export repeats a few attribute keys on every span
 * (`gen_ai.usage.input_tokens`, …) and a few values (models, providers, users): decoding each one
 * with `utf8Slice` allocated a fresh string per field, and every `Map` of attributes then hashed
 * it again, since a string's hash is cached on the string object. Profile of `npm run bench:otlp`:
 * string decoding and the attribute maps were a third of decoding a request.
 *
 * The table is direct-mapped by a hash of some of the bytes (`slotOf`); a hit compares all of
 * them, so a collision is a miss, never a wrong string. Invalid UTF-8 is refused (`TypeError`) before a
 * string enters the table, so a hit is as valid as the decode it saves.
 */
export class Utf8InternTable {
  private readonly bytes: Array<Uint8Array | undefined> = new Array(SLOTS);
  private readonly strings: Array<string | undefined> = new Array(SLOTS);

  /** The string of `buf[start, end)`, which must be valid UTF-8. */
  decode(buf: Utf8Buffer, start: number, end: number): string {
    const length = end - start;
    if (length > MAX_INTERNED_BYTES) return decodeStrict(buf, start, end);
    const slot = slotOf(buf, start, end);
    const seen = this.bytes[slot];
    if (seen !== undefined && seen.length === length && sameBytes(seen, buf, start)) {
      return this.strings[slot] as string;
    }
    const text = decodeStrict(buf, start, end);
    this.bytes[slot] = Uint8Array.prototype.slice.call(buf, start, end);
    this.strings[slot] = text;
    return text;
  }
}

/**
 * The table slot of `buf[start, end)`: FNV-1a over the length and at most 12 of the bytes (all of
 * a short string; the first four, the last four and four in the middle of a longer one). A hit
 * compares every byte anyway, so the sample only has to spread the strings of an export over the
 * slots: keys that share a prefix (`gen_ai.usage.*`) differ in their length or their end, ids
 * and user names in their last digits. Hashing every byte was most of the cost of a hit.
 */
function slotOf(buf: Uint8Array, start: number, end: number): number {
  const length = end - start;
  let hash = Math.imul(0x811c9dc5 ^ length, 0x01000193);
  if (length <= 12) {
    for (let i = start; i < end; i++) hash = Math.imul(hash ^ (buf[i] as number), 0x01000193);
  } else {
    const mid = start + (length >>> 1) - 2;
    for (let i = 0; i < 4; i++) {
      hash = Math.imul(hash ^ (buf[start + i] as number), 0x01000193);
      hash = Math.imul(hash ^ (buf[mid + i] as number), 0x01000193);
      hash = Math.imul(hash ^ (buf[end - 4 + i] as number), 0x01000193);
    }
  }
  return (hash ^ (hash >>> 15)) & (SLOTS - 1);
}

function sameBytes(seen: Uint8Array, buf: Uint8Array, start: number): boolean {
  for (let i = 0; i < seen.length; i++) if (seen[i] !== buf[start + i]) return false;
  return true;
}

/**
 * Node's native decoder replaces invalid bytes with U+FFFD; proto3 strings must be valid UTF-8,
 * so a string that holds U+FFFD is checked strictly and refused when its bytes are not.
 */
function decodeStrict(buf: Utf8Buffer, start: number, end: number): string {
  const text = buf.utf8Slice(start, end);
  if (text.includes('\uFFFD') && !isUtf8(buf.subarray(start, end)))
    throw new TypeError('a string field is not valid UTF-8');
  return text;
}
