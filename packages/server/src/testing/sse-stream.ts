import { type ClientRequest, request } from 'node:http';

/** A minimal server-sent-events client for tests of `GET /v1/live` (real HTTP, no EventSource). */
export interface SseEvent {
  event: string;
  data: string;
}

export interface Stream {
  status: number;
  contentType: string | undefined;
  events: SseEvent[];
  comments: string[];
  next(type: string, timeoutMs?: number): Promise<SseEvent>;
  close(): void;
  ended: Promise<void>;
}

export function openStream(url: string, headers: Record<string, string> = {}): Promise<Stream> {
  return new Promise((resolve, reject) => {
    let req: ClientRequest | undefined;
    req = request(
      url,
      { headers: { accept: 'text/event-stream', ...headers }, agent: false },
      (res) => {
        const events: SseEvent[] = [];
        const comments: string[] = [];
        const waiters: (() => void)[] = [];
        // Events before this index have been returned by next() (or skipped over by it).
        let cursor = 0;
        let buffer = '';
        let endResolve: () => void = () => {};
        const ended = new Promise<void>((r) => {
          endResolve = r;
        });
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buffer += chunk;
          for (let i = buffer.indexOf('\n\n'); i >= 0; i = buffer.indexOf('\n\n')) {
            const block = buffer.slice(0, i);
            buffer = buffer.slice(i + 2);
            let event = 'message';
            const data: string[] = [];
            for (const line of block.split('\n')) {
              if (line.startsWith(':')) comments.push(line.slice(1).trim());
              else if (line.startsWith('event: ')) event = line.slice(7);
              else if (line.startsWith('data: ')) data.push(line.slice(6));
            }
            if (data.length > 0) events.push({ event, data: data.join('\n') });
            for (const w of waiters.splice(0)) w();
          }
        });
        res.on('end', endResolve);
        res.on('close', endResolve);
        resolve({
          status: res.statusCode ?? 0,
          contentType: res.headers['content-type'],
          events,
          comments,
          ended,
          close: () => req?.destroy(),
          next: (type, timeoutMs = 5000) =>
            new Promise((ok, fail) => {
              const check = () => {
                const i = events.findIndex((e, j) => j >= cursor && e.event === type);
                if (i >= 0) {
                  cursor = i + 1;
                  clearTimeout(timer);
                  ok(events[i] as SseEvent);
                } else waiters.push(check);
              };
              const timer = setTimeout(
                () => fail(new Error(`no "${type}" event in ${timeoutMs} ms`)),
                timeoutMs,
              );
              check();
            }),
        });
      },
    );
    req.on('error', reject);
    req.end();
  });
}
