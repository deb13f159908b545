/**
 * A fast 53-bit non-cryptographic hash (cyrb53) rendered as base-36. It only has to tell
 * "same payload" from "different payload" for one event id, so collisions are irrelevant in
 * practice and speed matters: it runs once per ingested event.
 */
export function fingerprint(text: string): string {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return base36(4294967296 * (2097151 & h2) + (h1 >>> 0));
}

const DIGITS = '0123456789abcdefghijklmnopqrstuvwxyz';

/**
 * `n.toString(36)` for a non-negative safe integer, the same text: V8 renders any radix but 10
 * with a generic floating-point routine that cost twice the hash itself. Exact, since every
 * quotient and remainder of a safe integer by 36 is one.
 */
export function base36(n: number): string {
  if (n < 36) return DIGITS[n] as string;
  let text = '';
  while (n > 0) {
    const digit = n % 36;
    text = DIGITS[digit] + text;
    n = (n - digit) / 36;
  }
  return text;
}
