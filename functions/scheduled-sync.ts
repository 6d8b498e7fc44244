import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import { MetricUnit } from "@aws-lambda-powertools/metrics";
import { logMetrics } from "@aws-lambda-powertools/metrics/middleware";
import middy from "@middy/core";
import { required } from "../lib/config";
import { createDependencies, lazy } from "../lib/dependencies";
import { toServiceError } from "../lib/errors";
import { errorForLog, logger, metrics } from "../lib/observability";
import { parseSyncInput, runSync, type SyncSummary } from "../lib/sync/sync";

// The sync lists Books in the bulk lane; a page may wait for the next minute (the run has 300 s).
const dependencies = lazy(() => createDependencies(undefined, { lane: "bulk", maxWaitMs: 65_000 }));

/**
 * On its EventBridge schedule: reconciles Zoho Books with the desired state the rule's constant
 * input points at, and queues the changes for the worker. Returns and logs the summary.
 */
async function scheduledSync(event: unknown): Promise<SyncSummary> {
  const input = parseSyncInput(event);
  const { books, tokens, sqs, records, config } = dependencies();
  try {
    const summary = await runSync(
      {
        books,
        tokens,
        sqs,
        records,
        queueUrl: required(config, "BULK_QUEUE_URL"),
        timeoutMs: config.ZOHO_HTTP_TIMEOUT_MS,
      },
      input,
    );
    logger.info("Sync finished", { ...summary });
    metrics.addMetric("SyncJobsQueued", MetricUnit.Count, summary.jobs_queued);
    metrics.addMetric("SyncUnmatched", MetricUnit.Count, summary.unmatched + summary.ambiguous);
    metrics.addMetric("SyncZohoCalls", MetricUnit.Count, summary.zoho_calls);
    return summary;
  } catch (thrown) {
    const error = toServiceError(thrown);
    logger.error("Sync failed", { error: errorForLog(error), details: error.details });
    metrics.addMetric("SyncFailed", MetricUnit.Count, 1);
    throw error;
  }
}

export const handler = middy<unknown, SyncSummary>()
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(logMetrics(metrics, { captureColdStartMetric: true }))
  .handler(scheduledSync);
