/**
 * Stands in for `node:stream/web` in the Lambda bundles (serverless.yml, `custom.esbuild.alias`).
 * Its one importer there, `@middy/core`, imports `ReadableStream` for an `instanceof` test in
 * streamed responses (`streamifyResponse`), which no function here uses; importing the module
 * loads Node's whole web-streams implementation (readable, writable, transform, compression) at
 * every cold start. This `ReadableStream` answers `instanceof` as Node's own does, through the
 * global `ReadableStream`, which Node loads only when first touched.
 */
export const ReadableStream = {
  [Symbol.hasInstance]: (value: unknown): boolean => value instanceof globalThis.ReadableStream,
};
