/**
 * Stands in for `@smithy/core/event-streams` in the Lambda bundles (serverless.yml,
 * `custom.esbuild.alias`). The SDK imports it lazily, only for operations that stream events;
 * SQS, Secrets Manager and S3's GetObject use none. Bundled, that one dynamic import kept 20 KB of unused
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

/**
 * S3's client resolves its event-stream marshaller when it is built (for SelectObjectContent,
 * which the sync never calls): a marshaller that throws only if used.
 */
export const eventStreamSerdeProvider = () => ({ serialize: notBundled, deserialize: notBundled });

export const resolveEventStreamSerdeConfig = <
  T extends { eventStreamSerdeProvider: (input: T) => unknown },
>(
  input: T,
) => Object.assign(input, { eventStreamMarshaller: input.eventStreamSerdeProvider(input) });
