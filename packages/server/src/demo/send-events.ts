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
  const { json, retries } = await postIdempotent(url, '/v1/events', key, body, 202, maxRetries);
  return { ...(json as Omit<SendResult, 'retries'>), retries };
}

/**
 * POSTs a JSON body that is safe to send again (its events carry their ids), retrying 429/503
 * (honouring Retry-After) and network errors; any other answer than `okStatus` is final.
 */
export async function postIdempotent(
  url: string,
  path: string,
  key: string,
  body: string,
  okStatus: number,
  maxRetries = 8,
): Promise<{ json: unknown; retries: number }> {
  let retries = 0;
  for (;;) {
    try {
      const res = await fetch(`${url}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body,
      });
      const text = await res.text();
      if (res.status === okStatus) return { json: JSON.parse(text), retries };
      if ((res.status === 429 || res.status === 503) && retries < maxRetries) {
        retries++;
        const after = Number(res.headers.get('retry-after') ?? '1');
        await sleep(Math.max(50, Math.min(after, 5) * 1000 * (0.5 + Math.random() / 2)));
        continue;
      }
      throw new FinalAnswer(`POST ${path} answered ${res.status}: ${text.slice(0, 500)}`);
    } catch (err) {
      if (err instanceof FinalAnswer) throw err;
      if (retries >= maxRetries) throw err;
      retries++;
      await sleep(100 * 2 ** Math.min(retries, 5) * Math.random());
    }
  }
}

class FinalAnswer extends Error {}
