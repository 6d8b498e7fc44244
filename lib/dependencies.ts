import { type BaseDependencies, createBaseDependencies } from "./base-dependencies";
import { type Config, readConfig } from "./config";
import { type TokenStore, tokenStoreFromConfig } from "./credentials/token-store";
import { type Lane, ZohoBudget } from "./ledger/budget";
import { ZohoBooksClient } from "./zoho/books-client";

// `lazy` has a module of its own, so that a function needing only it (the token refresh) does not
// reach this one's `import()` of the SQS client (docs/performance.md, "Cold start").
export { lazy } from "./lazy";

/** Everything a handler that calls Zoho needs: the base dependencies and the Zoho path. */
export interface Dependencies extends BaseDependencies {
  tokens: TokenStore;
  budget: ZohoBudget;
  books: ZohoBooksClient;
}

/** How the Books client spends the budget: its lane, and how long a call may wait for it. */
export interface ZohoOptions {
  lane: Lane;
  maxWaitMs?: number;
}

/**
 * Builds what a handler needs from the environment. Every Books call goes through the ledger's
 * budget, in `lane` unless the call names another. The AWS SDK clients read their own variables
 * (`AWS_REGION`, `AWS_ENDPOINT_URL…`), which is how the service runs against local endpoints.
 */
export function createDependencies(
  config: Config = readConfig(),
  options: ZohoOptions = { lane: "interactive" },
): Dependencies {
  return withZoho(createBaseDependencies(config), options);
}

/**
 * Adds the Zoho path (token store, budget, Books client) to base dependencies, sharing their
 * DynamoDB client: the HTTP API builds it once per container, on its first route that calls
 * Zoho (lib/zoho-path.ts).
 */
export function withZoho(base: BaseDependencies, options: ZohoOptions): Dependencies {
  const { config, dynamo } = base;
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
    ...base,
    tokens,
    budget,
    books: new ZohoBooksClient({
      tokens,
      budget,
      lane: options.lane,
      maxWaitMs: options.maxWaitMs ?? 0,
      timeoutMs: config.ZOHO_HTTP_TIMEOUT_MS,
    }),
  };
}
