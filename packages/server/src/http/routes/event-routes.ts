import { TokenwatchError } from '@tokenwatch/core';
import type { AppDeps, Route } from '../app.js';
import { parseJson, readBody } from '../read-body.js';
import { sendJson } from '../respond.js';

const JSON_TYPES = /^(application\/(json|[\w.+-]+\+json)|text\/plain)(\s*;.*)?$/i;

export function eventRoutes(deps: AppDeps): Route[] {
  const reject = (reason: string) => deps.metrics.rejectedRequests.inc({ reason });
  return [
    {
      method: 'POST',
      path: '/v1/events',
      async handle({ req, res }) {
        try {
          const principal = await deps.auth.authenticate(req.headers.authorization, 'ingest');
          const type = req.headers['content-type'];
          if (type !== undefined && !JSON_TYPES.test(type)) {
            req.resume();
            throw new TokenwatchError(
              'unsupported_media_type',
              `Content-Type "${type}" is not accepted; send application/json.`,
            );
          }
          const body = parseJson(await readBody(req, deps.config.ingest.maxBodyBytes));
          const counts = await deps.ingest.ingest(body, principal);
          sendJson(res, 202, counts);
        } catch (err) {
          if (err instanceof TokenwatchError) reject(err.code);
          else reject('internal');
          throw err;
        }
      },
    },
  ];
}
