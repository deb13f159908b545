import { type Agent, type IncomingHttpHeaders, request } from 'node:http';

/** A complete HTTP response, body read in full. */
export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  text: string;
  /** The body parsed as JSON; throws with the text when it is not JSON. */
  json<T = any>(): T;
}

export interface HttpRequestOptions {
  method?: string;
  headers?: Record<string, string | number>;
  /**
   * A string or Buffer is sent with a Content-Length (unless `headers` set one); an array is
   * written chunk by chunk with `Transfer-Encoding: chunked` and no length.
   */
  body?: string | Buffer | readonly (string | Buffer)[];
  /** Default: a fresh connection per request (`Connection: close`). */
  agent?: Agent | false;
  timeoutMs?: number;
  /** Called once the whole request (headers and body) has been handed to the socket. */
  onRequestSent?: () => void;
}

/**
 * One HTTP/1.1 request with `node:http`, no retries, no redirects. Resolves with whatever status
 * comes back; rejects only when no complete response arrives (connection refused or reset).
 * A server that answers before reading the whole body (413) is fine: write errors after the
 * response has started are ignored.
 */
export function httpRequest(url: string, options: HttpRequestOptions = {}): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { ...options.headers };
    const body = options.body;
    const hasLength = Object.keys(headers).some((h) => h.toLowerCase() === 'content-length');
    if ((typeof body === 'string' || Buffer.isBuffer(body)) && !hasLength) {
      headers['content-length'] = Buffer.byteLength(body);
    }
    let responded = false;
    const req = request(
      url,
      { method: options.method ?? 'GET', headers, agent: options.agent ?? false },
      (res) => {
        responded = true;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const buf = Buffer.concat(chunks);
          const text = buf.toString('utf8');
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: buf,
            text,
            json<T>(): T {
              try {
                return JSON.parse(text) as T;
              } catch {
                throw new Error(`response is not JSON (status ${res.statusCode}): ${text}`);
              }
            },
          });
        });
      },
    );
    req.on('error', (err) => {
      if (!responded) reject(err);
    });
    if (options.timeoutMs !== undefined) {
      req.setTimeout(options.timeoutMs, () => req.destroy(new Error('request timed out')));
    }
    const sent = () => options.onRequestSent?.();
    if (body === undefined) {
      req.end(sent);
    } else if (typeof body === 'string' || Buffer.isBuffer(body)) {
      req.end(body, sent);
    } else {
      void (async () => {
        for (const chunk of body) {
          if (req.destroyed || responded) return;
          const ok = req.write(chunk);
          if (!ok) {
            await new Promise<void>((r) => {
              const done = () => {
                req.off('drain', done);
                req.off('close', done);
                r();
              };
              req.once('drain', done);
              req.once('close', done);
            });
          }
        }
        if (!req.destroyed && !responded) req.end(sent);
      })();
    }
  });
}
