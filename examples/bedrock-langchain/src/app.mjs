// The application side of the seed: a LangChain chat app on Bedrock, with tokenwatch added.
// The lines marked "tokenwatch" are all a real app adds (see README).
import { BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import { ChatBedrockConverse } from '@langchain/aws';
import { createTokenwatch } from '@tokenwatch/sdk'; // tokenwatch
import { TokenwatchCallbackHandler } from '@tokenwatch/sdk/langchain'; // tokenwatch

/**
 * @param {{ bedrockEndpoint?: string, region: string, modelId: string,
 *           tokenwatchEndpoint: string, tokenwatchApiKey: string, appId: string }} config
 *   `bedrockEndpoint` unset = the real AWS endpoint of `region`.
 */
export function createApp(config) {
  const tokenwatch = createTokenwatch({
    // tokenwatch
    endpoint: config.tokenwatchEndpoint,
    apiKey: config.tokenwatchApiKey,
    appId: config.appId,
  });
  const handler = new TokenwatchCallbackHandler({ tokenwatch }); // tokenwatch

  const model = new ChatBedrockConverse({
    model: config.modelId,
    region: config.region,
    callbacks: [handler], // tokenwatch
    ...(config.bedrockEndpoint
      ? {
          client: new BedrockRuntimeClient({
            region: config.region,
            endpoint: config.bedrockEndpoint,
            credentials: { accessKeyId: 'AKIDLOCAL', secretAccessKey: 'local' },
          }),
        }
      : {}),
  });

  return {
    /** One chat turn for one user: the user id travels in the invoke metadata. */
    /** @param {string} userId @param {string} question */
    async ask(userId, question) {
      const reply = await model.invoke(question, { metadata: { userId } }); // tokenwatch: metadata
      return String(reply.content);
    },
    /** The same, streamed: usage comes from Bedrock's final metadata event. */
    /** @param {string} userId @param {string} question */
    async askStreaming(userId, question) {
      let text = '';
      for await (const chunk of await model.stream(question, { metadata: { userId } }))
        text += String(chunk.content);
      return text;
    },
    /** Before the process (or a Lambda invocation) ends. */
    close: () => tokenwatch.shutdown(), // tokenwatch
    stats: () => tokenwatch.stats(),
  };
}
