import { checkWithin } from '../../health/deadline.js';
import type { AppDeps, Route } from '../app.js';
import { sendJson, sendText } from '../respond.js';

export function healthRoutes(deps: AppDeps): Route[] {
  const routes: Route[] = [
    {
      method: 'GET',
      path: '/healthz',
      async handle({ res }) {
        sendJson(res, 200, { status: 'ok' });
      },
    },
    {
      method: 'GET',
      path: '/readyz',
      async handle({ res }) {
        const problems: string[] = [];
        if (deps.isShuttingDown()) problems.push('shutting down');
        if (deps.sink.backlog >= deps.config.ingest.maxQueuedEvents * 0.9) {
          problems.push('ingest backlog near its limit');
        }
        // Each dependency is checked in parallel and within its own deadline: /readyz answers
        // in bounded time even while the database or the broker hangs.
        const checks = await Promise.all([
          checkWithin('store', () => deps.store.getProject('__readyz__')),
          deps.sink.check?.(),
        ]);
        for (const problem of checks) if (problem) problems.push(problem);
        if (problems.length > 0)
          sendJson(res, 503, { status: 'not ready', problems }, { 'retry-after': '1' });
        else sendJson(res, 200, { status: 'ready' });
      },
    },
    {
      method: 'GET',
      path: '/metrics',
      async handle({ res }) {
        sendText(res, 200, deps.metrics.render(), 'text/plain; version=0.0.4; charset=utf-8');
      },
    },
  ];
  return deps.serveMetrics === false ? routes.filter((r) => r.path !== '/metrics') : routes;
}
