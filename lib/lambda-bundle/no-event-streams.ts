/**
 * Stands in for `@smithy/core/event-streams` in the Lambda bundles (serverless.yml,
 * `custom.esbuild.alias`). The SDK imports it lazily, only for operations that stream events;
 * SQS and Secrets Manager have none. Bundled, that one dynamic import kept 20 KB of unused
 * code and made esbuild wrap 160 modules in lazy initialisers, each parsed twice at start.
 */
function notBundled(): never {
  throw new Error(
    "AWS SDK event streams are left out of this bundle (serverless.yml, esbuild alias)",
  );
}

export class EventStreamSerde {
  constructor() {
    notBundled();
  }
}

export const eventStreamSerdeProvider = notBundled;
