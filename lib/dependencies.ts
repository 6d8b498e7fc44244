import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { SQSClient } from "@aws-sdk/client-sqs";
import { lazySqsClient } from "./aws/lazy-sqs";
import { type Config, readConfig } from "./config";
import { type TokenStore, tokenStoreFromConfig } from "./credentials/token-store";
import { JobRecords } from "./jobs/records";
import { type Lane, ZohoBudget } from "./ledger/budget";
import { ZohoBooksClient } from "./zoho/books-client";

// `lazy` has a module of its own, so that a function needing only it (the token refresh) does not
// reach this one's `import()` of the SQS client (docs/performance.md, "Cold start").
export { lazy } from "./lazy";

export interface Dependencies {
  config: Config;
  sqs: SQSClient;
  dynamo: DynamoDBClient;
  tokens: TokenStore;
  budget: ZohoBudget;
  books: ZohoBooksClient;
  records: JobRecords;
}

/**
 * Builds what a handler needs from the environment. Every Books call goes through the ledger's
 * budget, in `lane` unless the call names another. The AWS SDK clients read their own variables
 * (`AWS_REGION`, `AWS_ENDPOINT_URL…`), which is how the service runs against local endpoints.
 */
export function createDependencies(
  config: Config = readConfig(),
  options: { lane: Lane; maxWaitMs?: number } = { lane: "interactive" },
): Dependencies {
  const dynamo = new DynamoDBClient({});
  const tokens = tokenStoreFromConfig(config, dynamo);
  const budget = new ZohoBudget({
    dynamo,
    table: config.ZOHO_LEDGER_TABLE,
    minuteShare: config.ZOHO_MINUTE_SHARE,
    concurrency: config.ZOHO_CONCURRENCY,
    dailyQuota: config.ZOHO_DAILY_QUOTA,
    // A lease outlives the call it guards: its timeout, plus a margin for the clock.
    leaseSeconds: Math.ceil(config.ZOHO_HTTP_TIMEOUT_MS / 1000) + 5,
  });
  return {
    config,
    sqs: lazySqsClient(),
    dynamo,
    tokens,
    budget,
    records: new JobRecords({
      dynamo,
      table: config.ZOHO_LEDGER_TABLE,
      retentionDays: config.JOB_RETENTION_DAYS,
    }),
    books: new ZohoBooksClient({
      tokens,
      budget,
      lane: options.lane,
      maxWaitMs: options.maxWaitMs ?? 0,
      timeoutMs: config.ZOHO_HTTP_TIMEOUT_MS,
    }),
  };
}
