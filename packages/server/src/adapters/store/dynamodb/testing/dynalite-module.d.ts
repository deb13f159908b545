declare module 'dynalite' {
  import type { Server } from 'node:http';

  interface DynaliteOptions {
    path?: string;
    createTableMs?: number;
    deleteTableMs?: number;
    updateTableMs?: number;
    maxItemSizeKb?: number;
  }
  // biome-ignore lint/style/noDefaultExport: the package's own export is a default one
  export default function dynalite(options?: DynaliteOptions): Server;
}
