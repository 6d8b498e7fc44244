import { SQSClient } from "@aws-sdk/client-sqs";
import { type Config, readConfig } from "./config";
import { type TokenStore, tokenStoreFromConfig } from "./credentials/token-store";
import { RateLimiter } from "./rate-limiter";
import { ZohoBooksClient } from "./zoho/books-client";

export interface Dependencies {
  config: Config;
  sqs: SQSClient;
  tokens: TokenStore;
  books: ZohoBooksClient;
}

/**
 * Builds what a handler needs from the environment. The AWS SDK clients read their own
 * variables (`AWS_REGION`, `AWS_ENDPOINT_URL…`), which is how the service runs against local
 * endpoints unchanged.
 */
export function createDependencies(
  config: Config = readConfig(),
  options: { rateLimited?: boolean } = {},
): Dependencies {
  const tokens = tokenStoreFromConfig(config);
  const limiter = options.rateLimited
    ? new RateLimiter({
        perMinute: config.ZOHO_RATE_LIMIT_PER_MINUTE,
        concurrency: config.WORKER_CONCURRENCY,
      })
    : undefined;
  return {
    config,
    sqs: new SQSClient({}),
    tokens,
    books: new ZohoBooksClient({
      tokens,
      timeoutMs: config.ZOHO_HTTP_TIMEOUT_MS,
      ...(limiter ? { limiter } : {}),
    }),
  };
}

/** Created on first use, then kept for the container's life; a bad environment fails each call clearly. */
export function lazy<T>(create: () => T): () => T {
  let value: T | undefined;
  return () => {
    value ??= create();
    return value;
  };
}
