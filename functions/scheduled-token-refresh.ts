import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import { logMetrics } from "@aws-lambda-powertools/metrics/middleware";
import middy from "@middy/core";
import type { ScheduledEvent } from "aws-lambda";
import { readConfig } from "../lib/config";
import { tokenStoreFromConfig } from "../lib/credentials/token-store";
import { lazy } from "../lib/lazy";
import { logger, metrics } from "../lib/observability";

// Only the token store: this function needs no queue and no Books client.
const dependencies = lazy(() => {
  const config = readConfig();
  return { config, tokens: tokenStoreFromConfig(config) };
});

export interface TokenRefreshResult {
  refreshed: boolean;
  expires_at: string;
}

/**
 * Every 30 minutes (the schedule in serverless.yml): renews the stored access token when it has less than
 * `TOKEN_REFRESH_MARGIN_MINUTES` left, so the other functions always find a fresh one and never
 * grant their own. A run while the token is fresh costs no grant. Logs the expiry, never the token.
 */
async function refreshToken(_event: ScheduledEvent): Promise<TokenRefreshResult> {
  const { tokens, config } = dependencies();
  const { refreshed, expiresAt } = await tokens.refreshIfExpiringWithin(
    config.TOKEN_REFRESH_MARGIN_MINUTES * 60,
  );
  const result = { refreshed, expires_at: new Date(expiresAt).toISOString() };
  logger.info(refreshed ? "Access token refreshed" : "Access token still fresh", { ...result });
  return result;
}

export const handler = middy<ScheduledEvent, TokenRefreshResult>()
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(logMetrics(metrics, { captureColdStartMetric: true }))
  .handler(refreshToken);
