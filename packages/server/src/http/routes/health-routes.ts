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
        try {
          await deps.store.getProject('__readyz__');
        } catch (err) {
          problems.push(`store unavailable: ${(err as Error).message}`);
        }
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
