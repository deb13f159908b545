import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { TokenwatchError } from '@tokenwatch/core';
import type { AppDeps, Route } from '../app.js';
import { ANY_QUERY } from '../query-params.js';

/**
 * Serves the built dashboard (`packages/dashboard/dist`) at `/`: files with their content type,
 * hashed assets cached for a year (immutable), index.html revalidated every time, and every other
 * path that is not an API path answered with index.html (the dashboard routes in the browser).
 * Paths are resolved inside the dist directory only; `..`, dot-files, backslashes and NUL are
 * refused, so no request can read outside it. When the dashboard was not built, `/` answers a
 * short page saying how to build it.
 */

/** From `dist/http/routes/` (or `src/http/routes/`) up to `packages/`, then `dashboard/dist/`. */
export const DEFAULT_DASHBOARD_DIR = fileURLToPath(
  new URL('../../../../dashboard/dist/', import.meta.url),
);

/**
 * Every GET path except the API's own (`/v1/…`, `/healthz`, `/readyz`, `/metrics`): an unknown
 * API path stays a JSON 404, never the dashboard. Register this route last.
 */
// (Plain groups: the router turns ":name" into a parameter, so no "(?:" here.)
export const DASHBOARD_PATH = '/(?!(v1|healthz|readyz|metrics)(/|$)).*';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.ico': 'image/x-icon',
  '.webp': 'image/webp',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
  '.webmanifest': 'application/manifest+json',
};
const COMPRESSIBLE = new Set([
  '.html',
  '.js',
  '.mjs',
  '.css',
  '.json',
  '.map',
  '.svg',
  '.txt',
  '.webmanifest',
]);

/**
 * Same-origin only: the dashboard loads its own scripts and styles and talks to this server.
 * ECharts sets inline style attributes, hence 'unsafe-inline' for styles (not scripts).
 */
const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const HTML_HEADERS = {
  'content-security-policy': CSP,
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

const NOT_BUILT_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>tokenwatch</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;line-height:1.5}code,pre{background:#f0f0f0;padding:.1rem .3rem;border-radius:4px}</style>
</head><body>
<h1>tokenwatch is running</h1>
<p>The API is up, but the web dashboard has not been built into <code>packages/dashboard/dist</code>.</p>
<p>Build it from the repository root, then reload this page:</p>
<pre>npm run build</pre>
<p>(or only the dashboard: <code>npm run build -w packages/dashboard</code>). The HTTP API is documented in the README.</p>
</body></html>
`;

interface CachedFile {
  mtimeMs: number;
  size: number;
  body: Buffer;
  gzip: Buffer | undefined;
  etag: string;
}

export class StaticFiles {
  private readonly root: string;
  private readonly cache = new Map<string, CachedFile>();

  constructor(root: string) {
    this.root = resolve(root);
  }

  /** The file a URL path names inside the root, or undefined when it cannot be one. */
  resolvePath(pathname: string): string | undefined {
    let decoded: string;
    try {
      decoded = decodeURIComponent(pathname);
    } catch {
      return undefined;
    }
    if (decoded.includes('\0') || decoded.includes('\\')) return undefined;
    const segments = decoded.split('/').filter((s) => s.length > 0);
    if (segments.some((s) => s === '..' || s.startsWith('.'))) return undefined;
    const full = resolve(this.root, ...segments);
    if (full !== this.root && !full.startsWith(this.root + sep)) return undefined;
    return full;
  }

  private load(file: string): CachedFile | undefined {
    let st: ReturnType<typeof statSync>;
    try {
      st = statSync(file);
    } catch {
      return undefined;
    }
    if (!st.isFile()) return undefined;
    const cached = this.cache.get(file);
    if (cached && cached.mtimeMs === st.mtimeMs && cached.size === st.size) return cached;
    const body = readFileSync(file);
    const ext = extname(file).toLowerCase();
    const entry: CachedFile = {
      mtimeMs: st.mtimeMs,
      size: st.size,
      body,
      gzip: COMPRESSIBLE.has(ext) && body.length > 1024 ? gzipSync(body, { level: 9 }) : undefined,
      etag: `"${createHash('sha1').update(body).digest('base64url')}"`,
    };
    // The dist directory is small (a few files); bound the cache anyway.
    if (this.cache.size > 200) this.cache.clear();
    this.cache.set(file, entry);
    return entry;
  }

  serve(req: IncomingMessage, res: ServerResponse, pathname: string): void {
    const path = this.resolvePath(pathname);
    if (path === undefined) {
      throw new TokenwatchError('not_found', 'No such file.');
    }
    const direct = path === this.root ? undefined : this.load(path);
    if (direct) {
      const isAsset = pathname.startsWith('/assets/');
      const cacheControl = isAsset
        ? 'public, max-age=31536000, immutable'
        : extname(path) === '.html'
          ? 'no-cache'
          : 'public, max-age=3600';
      this.send(req, res, path, direct, cacheControl);
      return;
    }
    // A missing asset or file is a 404 (a script must never receive HTML); any other path is a
    // dashboard route: the app itself decides what it shows.
    const last = pathname.split('/').pop() ?? '';
    if (pathname.startsWith('/assets/') || last.includes('.')) {
      throw new TokenwatchError('not_found', 'No such file.');
    }
    const indexPath = resolve(this.root, 'index.html');
    const index = this.load(indexPath);
    if (!index) {
      const body = Buffer.from(NOT_BUILT_PAGE);
      res.writeHead(200, {
        'content-type': 'text/html; charset=utf-8',
        'content-length': body.length,
        'cache-control': 'no-store',
        'x-content-type-options': 'nosniff',
        ...HTML_HEADERS,
      });
      res.end(body);
      return;
    }
    this.send(req, res, indexPath, index, 'no-cache');
  }

  private send(
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    file: CachedFile,
    cacheControl: string,
  ): void {
    const ext = extname(path).toLowerCase();
    const headers: Record<string, string | number> = {
      'content-type': TYPES[ext] ?? 'application/octet-stream',
      'cache-control': cacheControl,
      etag: file.etag,
      'x-content-type-options': 'nosniff',
      ...(ext === '.html' ? HTML_HEADERS : {}),
    };
    if (file.gzip) headers.vary = 'Accept-Encoding';
    const inm = req.headers['if-none-match'];
    if (inm?.split(',').some((t) => t.trim() === file.etag)) {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    const useGzip =
      file.gzip !== undefined && /\bgzip\b/.test(req.headers['accept-encoding'] ?? '');
    const body = useGzip ? (file.gzip as Buffer) : file.body;
    if (useGzip) headers['content-encoding'] = 'gzip';
    headers['content-length'] = body.length;
    res.writeHead(200, headers);
    res.end(body);
  }
}

export function dashboardRoutes(
  _deps: AppDeps,
  options: { dir?: string | undefined } = {},
): Route[] {
  const files = new StaticFiles(options.dir ?? DEFAULT_DASHBOARD_DIR);
  return [
    {
      method: 'GET',
      path: DASHBOARD_PATH,
      // Static files: the query (cache busters, the dashboard's own view state) is the page's.
      query: ANY_QUERY,
      async handle({ req, res, url }) {
        files.serve(req, res, url.pathname);
      },
    },
  ];
}
