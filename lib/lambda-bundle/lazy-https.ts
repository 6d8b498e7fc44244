import type * as Https from "node:https";
import { createRequire } from "node:module";

/**
 * Stands in for `node:https` in the Lambda bundles (serverless.yml, `custom.esbuild.alias`). Its
 * one importer there, the SDK's `@smithy/node-http-handler`, imports it at the top and first uses
 * it when a client is created (its keep-alive `Agent`), which our functions do on their first
 * invocation (`lazy`); importing it loads Node's HTTP, TLS and net modules (26 of them) at every
 * cold import. This is the real module, loaded by `require` on the first property read and kept:
 * the cost moves from the import to the first client, as the fetch-only baseline's HTTP stack
 * (undici) loads on its first `fetch` (docs/performance.md, "Cold start").
 */
const nodeRequire = createRequire(import.meta.url);
let https: typeof Https | undefined;
const loaded = (): typeof Https => {
  https ??= nodeRequire("node:https") as typeof Https;
  return https;
};

export default new Proxy({} as typeof Https, {
  get: (_target, key) => Reflect.get(loaded(), key),
});
