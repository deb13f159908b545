// Runs the example against the local Bedrock stand-in and a tokenwatch server:
//   TOKENWATCH_URL=http://127.0.0.1:8787 TOKENWATCH_API_KEY=twk_... npm start
import { createApp } from './app.mjs';
import { BedrockStandIn } from './bedrock-stand-in.mjs';

const bedrock = await new BedrockStandIn().start();
const app = createApp({
  bedrockEndpoint: process.env.BEDROCK_ENDPOINT ?? bedrock.url,
  region: 'us-east-1',
  modelId: 'us.anthropic.claude-sonnet-4-5-20250929-v1:0',
  tokenwatchEndpoint: process.env.TOKENWATCH_URL ?? 'http://127.0.0.1:8787',
  tokenwatchApiKey: process.env.TOKENWATCH_API_KEY ?? '',
  appId: 'seed-chat',
});
for (const user of ['alice', 'bob', 'carol']) {
  console.log(user, '→', await app.ask(user, `Hello from ${user}`));
}
await app.close();
console.log('tokenwatch:', app.stats());
await bedrock.stop();
