import { defineConfig } from 'vite';

// `npm run dev -w packages/dashboard` proxies the API to a running `tokenwatch serve`
// (TOKENWATCH_URL, default http://127.0.0.1:8787); `npm run build` writes dist/ for the server.
const api = process.env.TOKENWATCH_URL ?? 'http://127.0.0.1:8787';

export default defineConfig({
  base: '/',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    // ECharts is the bulk; one vendor chunk caches across dashboard releases.
    chunkSizeWarningLimit: 900,
    rollupOptions: {
      output: {
        manualChunks: (id) => (id.includes('node_modules') ? 'vendor' : undefined),
      },
    },
  },
  server: {
    proxy: { '/v1': { target: api, changeOrigin: false } },
  },
});
