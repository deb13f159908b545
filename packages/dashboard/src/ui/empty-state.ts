import { clear, h } from '../lib/html.js';
import type { AppContext } from '../views/context.js';

const MODEL = 'us.anthropic.claude-sonnet-4-5-20250929-v1:0';

function curlSnippet(origin: string, key: string): string {
  return `curl -sS -X POST ${origin}/v1/events \\
  -H "Authorization: Bearer ${key}" \\
  -H 'Content-Type: application/json' \\
  -d '{"id":"evt-'$(date +%s%N)'","timestamp":'$(date +%s000)',
       "userId":"alice","appId":"chat","provider":"bedrock",
       "modelId":"${MODEL}",
       "inputTokens":1200,"outputTokens":350}'`;
}

function sdkSnippet(origin: string, key: string): string {
  return `import { createTokenwatch } from '@tokenwatch/sdk';

const tokenwatch = createTokenwatch({
  endpoint: '${origin}',
  apiKey: '${key}',
  appId: 'chat',
});
tokenwatch.record({
  userId: 'alice', modelId: '${MODEL}', provider: 'bedrock',
  inputTokens: 1200, outputTokens: 350,
});
await tokenwatch.flush();`;
}

/**
 * First run: no usage at all yet. Shows how to send the first event with this server's URL; an
 * admin can create an ingest key here, which is then filled into the snippets. The view appears
 * by itself when the first event arrives (live).
 */
export function renderEmptyState(root: HTMLElement, ctx: AppContext): void {
  clear(root);
  let key = '$INGEST_KEY';
  const curl = h('pre', { class: 'snippet', dataset: { snippet: 'curl' } });
  const sdk = h('pre', { class: 'snippet', dataset: { snippet: 'sdk' } });
  const fill = () => {
    curl.textContent = curlSnippet(ctx.origin, key);
    sdk.textContent = sdkSnippet(ctx.origin, key);
  };
  fill();
  const keyNote = h('p', { class: 'muted' });
  const createKey =
    ctx.who.role === 'admin'
      ? h(
          'button',
          {
            class: 'btn btn-primary',
            attrs: { type: 'button' },
            on: {
              click: () => {
                createKey?.setAttribute('disabled', '');
                ctx.api
                  .request<{ key: string; id: string }>('POST', '/v1/keys', {
                    body: { role: 'ingest', name: 'dashboard quickstart' },
                  })
                  .then((res) => {
                    key = res.key;
                    fill();
                    keyNote.textContent = `Created ingest key ${res.id}. It is shown only here, once: copy it now (revoke it with DELETE /v1/keys/${res.id}).`;
                  })
                  .catch((err: unknown) => {
                    createKey?.removeAttribute('disabled');
                    keyNote.textContent = `Could not create a key: ${err instanceof Error ? err.message : String(err)}`;
                  });
              },
            },
          },
          'Create an ingest key',
        )
      : null;
  if (!createKey)
    keyNote.textContent =
      'Use the ingest key printed at the first start (or ask an admin: tokenwatch keys create --role ingest).';
  root.appendChild(
    h(
      'section',
      { class: 'empty-state', dataset: { state: 'first-run' } },
      h('h1', null, 'No usage yet'),
      h(
        'p',
        null,
        'Send your first LLM usage event to this server; it appears here the moment it is counted, without a reload.',
      ),
      h('div', { class: 'empty-key' }, createKey, keyNote),
      h('h2', null, 'With curl'),
      curl,
      h('h2', null, 'With the SDK (Node ≥ 20, edge, Lambda)'),
      sdk,
      h(
        'p',
        { class: 'muted' },
        'Integrations for LangChain.js, the Bedrock SDK, OpenAI, Anthropic and the AI SDK: see packages/sdk/README.md. ',
        'Or fill it with demo traffic: npx tokenwatch demo --url ',
        ctx.origin,
        ' --key <admin or ingest key>.',
      ),
      h('p', { class: 'waiting', attrs: { role: 'status' } }, 'Waiting for the first event…'),
    ),
  );
}
