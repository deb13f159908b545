const HEX: string[] = [];
for (let i = 0; i < 256; i++) HEX.push(i.toString(16).padStart(2, '0'));

const POOL_SIZE = 4096;

interface CryptoLike {
  getRandomValues<T extends ArrayBufferView>(array: T): T;
}

function getCrypto(): CryptoLike | undefined {
  return (globalThis as { crypto?: CryptoLike }).crypto;
}

/**
 * Returns a generator of RFC 9562 UUIDv7 strings: 48-bit Unix ms, then a 12-bit counter seeded
 * randomly each millisecond (method 1, "fixed bit-length dedicated counter"), so ids made by one
 * generator sort by creation order even within a millisecond; 62 random bits follow.
 * Random bytes are drawn from crypto in pools so one id costs no syscall.
 */
export function createUuidV7(now: () => number = Date.now): () => string {
  const crypto = getCrypto();
  const pool = new Uint8Array(POOL_SIZE);
  let poolPos = POOL_SIZE;
  let lastMs = -1;
  let counter = 0;

  const refill = (): void => {
    if (crypto) crypto.getRandomValues(pool);
    else for (let i = 0; i < POOL_SIZE; i++) pool[i] = (Math.random() * 256) | 0;
    poolPos = 0;
  };

  return () => {
    let ms = now();
    if (poolPos + 10 > POOL_SIZE) refill();
    const p = pool;
    let i = poolPos;
    poolPos += 10;
    if (ms > lastMs) {
      lastMs = ms;
      counter = (((p[i] as number) & 0x07) << 8) | (p[i + 1] as number); // top bit clear: room to count
    } else {
      ms = lastMs; // clock went back or same ms: keep order by counting
      counter++;
      if (counter > 0xfff) {
        lastMs++;
        ms = lastMs;
        counter = 0;
      }
    }
    i += 2;
    const hi = Math.floor(ms / 0x1000000); // top 24 bits of the 48-bit timestamp
    const lo = ms % 0x1000000;
    return (
      (HEX[(hi >>> 16) & 0xff] as string) +
      HEX[(hi >>> 8) & 0xff] +
      HEX[hi & 0xff] +
      HEX[(lo >>> 16) & 0xff] +
      '-' +
      HEX[(lo >>> 8) & 0xff] +
      HEX[lo & 0xff] +
      '-' +
      HEX[0x70 | (counter >>> 8)] +
      HEX[counter & 0xff] +
      '-' +
      HEX[0x80 | ((p[i] as number) & 0x3f)] +
      HEX[p[i + 1] as number] +
      '-' +
      HEX[p[i + 2] as number] +
      HEX[p[i + 3] as number] +
      HEX[p[i + 4] as number] +
      HEX[p[i + 5] as number] +
      HEX[p[i + 6] as number] +
      HEX[p[i + 7] as number]
    );
  };
}
