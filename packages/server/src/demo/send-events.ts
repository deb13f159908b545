/** Result of posting one batch with retries. */
export interface SendResult {
  accepted: number;
  duplicates: number;
  conflicts: number;
  retries: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Posts one batch to /v1/events, retrying 429/503 (honouring Retry-After) and network errors
 * with the SAME body, so a retry can never count twice. A 4xx other than 429 is final.
 */
export async function postBatch(
  url: string,
  key: string,
  body: string,
  maxRetries = 8,
): Promise<SendResult> {
  let retries = 0;
  for (;;) {
    try {
      const res = await fetch(`${url}/v1/events`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body,
      });
      const text = await res.text();
      if (res.status === 202) {
        return { ...(JSON.parse(text) as Omit<SendResult, 'retries'>), retries };
      }
      if ((res.status === 429 || res.status === 503) && retries < maxRetries) {
        retries++;
        const after = Number(res.headers.get('retry-after') ?? '1');
        await sleep(Math.max(50, Math.min(after, 5) * 1000 * (0.5 + Math.random() / 2)));
        continue;
      }
      throw new Error(`POST /v1/events answered ${res.status}: ${text.slice(0, 500)}`);
    } catch (err) {
      if (err instanceof Error && err.message.startsWith('POST /v1/events answered')) throw err;
      if (retries >= maxRetries) throw err;
      retries++;
      await sleep(100 * 2 ** Math.min(retries, 5) * Math.random());
    }
  }
}
