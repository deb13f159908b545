import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SnsPublish {
  topicArn: string;
  subject: string;
  message: string;
  attributes: Record<string, string>;
}

/**
 * A loopback endpoint that answers the SNS Query API's Publish as SNS does and records each
 * request (what the real `@aws-sdk/client-sns` sent), for tests of the AWS deployment.
 */
export async function startSnsEndpoint(): Promise<{
  url: string;
  publishes: SnsPublish[];
  close(): Promise<void>;
}> {
  const publishes: SnsPublish[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
      const attributes: Record<string, string> = {};
      for (let i = 1; form.has(`MessageAttributes.entry.${i}.Name`); i++)
        attributes[form.get(`MessageAttributes.entry.${i}.Name`) as string] = form.get(
          `MessageAttributes.entry.${i}.Value.StringValue`,
        ) as string;
      publishes.push({
        topicArn: form.get('TopicArn') ?? '',
        subject: form.get('Subject') ?? '',
        message: form.get('Message') ?? '',
        attributes,
      });
      res.setHeader('content-type', 'text/xml');
      res.end(
        `<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><PublishResult><MessageId>m-${publishes.length}</MessageId></PublishResult><ResponseMetadata><RequestId>r-${publishes.length}</RequestId></ResponseMetadata></PublishResponse>`,
      );
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    publishes,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
