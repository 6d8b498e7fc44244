/**
 * Stands in for `bowser` in the Lambda bundles (serverless.yml, `custom.esbuild.alias`).
 * `@aws-sdk/core/client` re-exports the browser's user-agent provider, which parses
 * `navigator.userAgent` with bowser behind an `import()`; Node clients build their user agent with
 * `createDefaultUserAgentProvider` (os, Node version, exec-env) and never call it. Tree shaking
 * drops the provider but esbuild still writes the import's 34 KB chunk into every function's zip.
 */
export function parse(): never {
  throw new Error(
    "bowser (browser user-agent parsing) is left out of this bundle (serverless.yml)",
  );
}
