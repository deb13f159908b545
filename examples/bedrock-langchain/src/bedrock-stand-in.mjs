// A local stand-in for the Bedrock runtime's Converse and ConverseStream APIs, so the example
// runs without AWS: it speaks HTTP/2 cleartext (what the AWS SDK's default handler uses), checks
// the SigV4 header, and answers with deterministic token usage derived from the prompt.
import { createServer } from 'node:http2';
import { crc32 } from 'node:zlib';

/** The usage the stand-in reports for a prompt (the test computes its expected totals with it). */
/** @param {string} prompt */
export function usageFor(prompt) {
  const cached = prompt.includes('[cached]');
  return {
    inputTokens: 20 + prompt.length,
    outputTokens: 40 + (prompt.length % 7),
    cacheReadInputTokens: cached ? 1000 : 0,
    cacheWriteInputTokens: prompt.includes('[cache-write]') ? 500 : 0,
  };
}

/** One AWS event-stream message. @param {string} eventType @param {unknown} payload */
function frame(eventType, payload) {
  const headers = [
    [':event-type', eventType],
    [':content-type', 'application/json'],
    [':message-type', 'event'],
  ];
  const h = Buffer.concat(
    headers.map(([k, v]) => {
      const name = Buffer.from(k);
      const value = Buffer.from(v);
      const b = Buffer.alloc(4 + name.length + value.length);
      b.writeUInt8(name.length, 0);
      name.copy(b, 1);
      b.writeUInt8(7, 1 + name.length);
      b.writeUInt16BE(value.length, 2 + name.length);
      value.copy(b, 4 + name.length);
      return b;
    }),
  );
  const body = Buffer.from(JSON.stringify(payload));
  const prelude = Buffer.alloc(12);
  prelude.writeUInt32BE(16 + h.length + body.length, 0);
  prelude.writeUInt32BE(h.length, 4);
  prelude.writeUInt32BE(crc32(prelude.subarray(0, 8)), 8);
  const msg = Buffer.concat([prelude, h, body]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(msg), 0);
  return Buffer.concat([msg, crc]);
}

export class BedrockStandIn {
  /** @type {import('node:http2').Http2Server | undefined} */
  server = undefined;
  url = '';
  calls = 0;

  async start() {
    this.server = createServer((req, res) => {
      /** @type {Buffer[]} */
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        this.calls++;
        if (!String(req.headers.authorization ?? '').startsWith('AWS4-HMAC-SHA256 ')) {
          res.writeHead(403, { 'x-amzn-errortype': 'UnrecognizedClientException' });
          res.end(JSON.stringify({ message: 'missing SigV4 signature' }));
          return;
        }
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        const prompt =
          body.messages
            .at(-1)
            ?.content.map((c) => c.text ?? '')
            .join('') ?? '';
        const u = usageFor(prompt);
        const usage = {
          ...u,
          totalTokens:
            u.inputTokens + u.outputTokens + u.cacheReadInputTokens + u.cacheWriteInputTokens,
        };
        const path = decodeURIComponent(req.url ?? '');
        if (path.endsWith('/converse-stream')) {
          res.writeHead(200, { 'content-type': 'application/vnd.amazon.eventstream' });
          res.write(frame('messageStart', { role: 'assistant' }));
          res.write(
            frame('contentBlockDelta', {
              contentBlockIndex: 0,
              delta: { text: `echo: ${prompt}` },
            }),
          );
          res.write(frame('contentBlockStop', { contentBlockIndex: 0 }));
          res.write(frame('messageStop', { stopReason: 'end_turn' }));
          res.end(frame('metadata', { usage, metrics: { latencyMs: 5 } }));
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            output: { message: { role: 'assistant', content: [{ text: `echo: ${prompt}` }] } },
            stopReason: 'end_turn',
            usage,
            metrics: { latencyMs: 5 },
          }),
        );
      });
    });
    await new Promise((r) => this.server?.listen(0, '127.0.0.1', () => r(undefined)));
    const addr = this.server.address();
    this.url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
    return this;
  }

  /** @returns {Promise<void>} */
  stop() {
    return new Promise((r) => this.server?.close(() => r()));
  }
}
