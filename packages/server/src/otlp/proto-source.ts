import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

/** The vendored official definitions (see proto/README.md), relative to the package. */
const PROTO_DIR = fileURLToPath(new URL('../../proto/', import.meta.url));
const SEARCH_DIRS = ['opentelemetry-proto', 'googleapis'];
const ENTRY_FILES = [
  'opentelemetry/proto/collector/trace/v1/trace_service.proto',
  'google/rpc/status.proto',
];

/**
 * Parses the vendored .proto files with protobufjs and returns the JSON descriptor the receiver
 * is built from. Only the generator (`npm run gen:otlp-proto`) and a test call this: the server
 * itself loads the committed descriptor, so no .proto file is read at run time.
 */
export function parseVendoredProtos(): protobuf.INamespace {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => {
    // protobufjs has the google/protobuf well-known types built in.
    if (target.startsWith('google/protobuf/')) return target;
    for (const dir of SEARCH_DIRS) {
      const candidate = `${PROTO_DIR}${dir}/${target}`;
      if (existsSync(candidate)) return candidate;
    }
    return target;
  };
  root.loadSync(ENTRY_FILES);
  root.resolveAll();
  return root.toJSON();
}
