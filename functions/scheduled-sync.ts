import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import { MetricUnit } from "@aws-lambda-powertools/metrics";
import { logMetrics } from "@aws-lambda-powertools/metrics/middleware";
import middy from "@middy/core";
import { required } from "../lib/config";
import type { WatchSummary } from "../lib/crm/watch-run";
import { createDependencies, lazy } from "../lib/dependencies";
import { ServiceError, toServiceError } from "../lib/errors";
import { errorForLog, logger, metrics } from "../lib/observability";
import { DynamoSyncLedger } from "../lib/sync/state";
import { parseSyncInput, runSync, type SyncSummary } from "../lib/sync/sync";

// The sync lists Books in the bulk lane; a page may wait for the next minute (the run has 300 s).
const dependencies = lazy(() => {
  const base = createDependencies(undefined, { lane: "bulk", maxWaitMs: 65_000 });
  return {
    ...base,
    ledger: new DynamoSyncLedger({ dynamo: base.dynamo, table: base.config.ZOHO_LEDGER_TABLE }),
    // loaded and created on the first `s3` source only (lib/sync/s3-client.ts)
    s3: lazy(() => import("../lib/sync/s3-client").then(({ S3Client }) => new S3Client({}))),
  };
});

// CRM sources (`zoho_crm`, `hubspot`): their readers and clients are loaded on the first such
// run only, so a document source's cold start does not carry them
const crm = lazy(() => import("../lib/sync/crm-run"));

/**
 * The deployed rules carry only `{"mode": …}`; the rest of the input is the function's
 * `SYNC_INPUT` (the `syncInput` param), under the event's own fields: an event may still carry
 * a whole input.
 */
function inputOf(event: unknown): unknown {
  const text = process.env.SYNC_INPUT?.trim();
  if (!text) return event;
  let base: unknown;
  try {
    base = JSON.parse(text);
  } catch {
    throw new ServiceError("INVALID_REQUEST", "Sync input: SYNC_INPUT is not JSON.");
  }
  const isObject = (v: unknown): v is Record<string, unknown> =>
    typeof v === "object" && v !== null && !Array.isArray(v);
  return isObject(base) && isObject(event) ? { ...base, ...event } : event;
}

/**
 * On its EventBridge schedule: reconciles Zoho Books with the desired state the rule's constant
 * input points at, and queues the changes for the worker. Returns and logs the summary. A
 * `{"mode": "watch"}` run instead keeps a `zoho_crm` source's Zoho CRM notification channel alive
 * (lib/crm/watch-run.ts; the input checked as a sync's) and queues nothing.
 */
async function scheduledSync(event: unknown): Promise<SyncSummary | WatchSummary> {
  const raw = inputOf(event);
  if ((raw as { mode?: unknown } | null)?.mode === "watch")
    return (await crm()).runScheduledWatch(
      dependencies(),
      parseSyncInput({ ...(raw as object), mode: "full" }),
    );
  const input = parseSyncInput(raw);
  const deps = dependencies();
  const { config } = deps;
  const run = {
    ...deps,
    queueUrl: required(config, "BULK_QUEUE_URL"),
    timeoutMs: config.ZOHO_HTTP_TIMEOUT_MS,
  };
  try {
    const { source } = input;
    const summary =
      source.type === "zoho_crm" || source.type === "hubspot"
        ? await (await crm()).runCrmSource(run, { ...input, source })
        : await runSync(run, { ...input, source });
    logger.info("Sync finished", { ...summary });
    metrics.addMetric("SyncJobsQueued", MetricUnit.Count, summary.jobs_queued);
    metrics.addMetric("SyncUnmatched", MetricUnit.Count, summary.unmatched + summary.ambiguous);
    metrics.addMetric("SyncZohoCalls", MetricUnit.Count, summary.zoho_calls);
    metrics.addMetric("SyncListCalls", MetricUnit.Count, summary.list_calls);
    metrics.addMetric("SyncConflicting", MetricUnit.Count, summary.conflicting);
    if (summary.crm_calls !== undefined)
      metrics.addMetric("SyncCrmCalls", MetricUnit.Count, summary.crm_calls);
    return summary;
  } catch (thrown) {
    const error = toServiceError(thrown);
    logger.error("Sync failed", { error: errorForLog(error), details: error.details });
    metrics.addMetric("SyncFailed", MetricUnit.Count, 1);
    throw error;
  }
}

export const handler = middy<unknown, SyncSummary | WatchSummary>()
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(logMetrics(metrics, { captureColdStartMetric: true }))
  .handler(scheduledSync);
